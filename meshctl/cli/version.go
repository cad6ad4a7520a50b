package cli

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"sort"

	"github.com/spf13/cobra"
	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/meshctl/kube"
	"github.com/weftmesh/weft/meshctl/output"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Version is meshctl's version, set at build time with
// -ldflags "-X github.com/weftmesh/weft/meshctl/cli.Version=<v>".
var Version = "dev"

// VersionReport is the output of meshctl version.
type VersionReport struct {
	Client       ClientVersion      `json:"client"`
	Kubernetes   string             `json:"kubernetes,omitempty"`
	ControlPlane []ComponentVersion `json:"controlPlane,omitempty"`
	Proxies      []ProxyVersion     `json:"proxies,omitempty"`
}

// ClientVersion is meshctl's build.
type ClientVersion struct {
	Version   string `json:"version"`
	GoVersion string `json:"goVersion"`
	Revision  string `json:"revision,omitempty"`
}

// ComponentVersion is a control-plane component's image.
type ComponentVersion struct {
	Component string `json:"component"`
	Image     string `json:"image"`
	Ready     string `json:"ready"`
}

// ProxyVersion counts the sidecars of one image.
type ProxyVersion struct {
	Image string `json:"image"`
	Count int    `json:"count"`
}

// WriteTable prints the versions.
func (v VersionReport) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "client:        meshctl %s (%s%s)\n", v.Client.Version, v.Client.GoVersion, prefixedRev(v.Client.Revision))
	if v.Kubernetes != "" {
		fmt.Fprintf(w, "kubernetes:    %s\n", v.Kubernetes)
	}
	if v.Kubernetes == "" {
		return nil
	}
	if len(v.ControlPlane) == 0 {
		fmt.Fprintln(w, "control plane: not installed")
	}
	for _, c := range v.ControlPlane {
		fmt.Fprintf(w, "control plane: %-14s %s (%s ready)\n", c.Component, c.Image, c.Ready)
	}
	if len(v.Proxies) == 0 {
		fmt.Fprintln(w, "proxies:       none")
	}
	for _, p := range v.Proxies {
		fmt.Fprintf(w, "proxies:       %s × %d\n", p.Image, p.Count)
	}
	return nil
}

func prefixedRev(r string) string {
	if r == "" {
		return ""
	}
	return ", " + r
}

func clientVersion() ClientVersion {
	cv := ClientVersion{Version: Version, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				cv.Revision = s.Value[:12]
			}
		}
	}
	return cv
}

func (a *app) versionCmd() *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the versions of meshctl, the control plane and the proxies",
		Args:  args(cobra.NoArgs),
	}
	format := outputFlag(cmd)
	cmd.Flags().BoolVar(&clientOnly, "client", false, "only meshctl's version (no cluster needed)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		f, err := format()
		if err != nil {
			return err
		}
		rep := VersionReport{Client: clientVersion()}
		if !clientOnly {
			c, err := a.client(cmd.Context())
			if err != nil {
				_ = output.Print(a.env.Out, f, rep)
				return err
			}
			if err := clusterVersions(cmd.Context(), c, &rep); err != nil {
				return err
			}
		}
		return output.Print(a.env.Out, f, rep)
	}
	return cmd
}

func clusterVersions(ctx context.Context, c *kube.Client, rep *VersionReport) error {
	sv, err := c.Kube.Discovery().ServerVersion()
	if err != nil {
		return kube.Humanize(err, c.Host)
	}
	rep.Kubernetes = sv.GitVersion
	for _, name := range []string{"weft-pilot", "weft-injector"} {
		d, err := c.Kube.AppsV1().Deployments(ControlPlaneNamespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		cv := ComponentVersion{Component: name, Ready: fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, want)}
		if cs := d.Spec.Template.Spec.Containers; len(cs) > 0 {
			cv.Image = cs[0].Image
		}
		rep.ControlPlane = append(rep.ControlPlane, cv)
	}
	pods, err := c.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	counts := map[string]int{}
	for _, p := range pods.Items {
		if st, err := annotation.ParseStatus(p.Annotations[annotation.StatusAnnotation]); err == nil && p.DeletionTimestamp == nil {
			counts[st.Image]++
		}
	}
	for img, n := range counts {
		rep.Proxies = append(rep.Proxies, ProxyVersion{Image: img, Count: n})
	}
	sort.Slice(rep.Proxies, func(i, j int) bool { return rep.Proxies[i].Image < rep.Proxies[j].Image })
	return nil
}
