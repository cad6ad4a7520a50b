package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/weftmesh/weft/meshctl/inject"
	"github.com/weftmesh/weft/meshctl/output"
	corev1 "k8s.io/api/core/v1"
)

func (a *app) injectCmd() *cobra.Command {
	var file, image, trustDomain, revision, pullPolicy string
	var vf valuesFlags
	var quiet bool
	cmd := &cobra.Command{
		Use:   "inject -f app.yaml",
		Short: "Inject the sidecar into the pods of a manifest (offline, for GitOps)",
		Long: `Inject reads Kubernetes manifests and writes them back with the weft-sidecar
added to every pod and pod template, using the injection webhook's own
function (injector.Mutate): the result is what the webhook would admit. It
needs no cluster. The namespace is taken as opted in; pods labelled
sidecar.weft.dev/inject=false, host-network pods and already injected pods are
left unchanged. The injection config comes from the install values
(--values/--set, as for install) or the flags below; a summary of what was
injected goes to stderr.`,
		Example: `  meshctl inject -f app.yaml | kubectl apply -f -
  kustomize build overlays/prod | meshctl inject -f - --values values.yaml > injected.yaml`,
		Args: args(cobra.NoArgs),
	}
	format := outputFlag(cmd) // table means YAML here
	cmd.Flags().StringVarP(&file, "filename", "f", "", "manifest to inject (- for stdin)")
	must(cmd.MarkFlagFilename("filename", "yaml", "yml", "json"))
	cmd.Flags().StringVar(&image, "sidecar-image", "", "sidecar image (default: the values' <registry>/sidecar:<tag>)")
	cmd.Flags().StringVar(&trustDomain, "trust-domain", "", "SPIFFE trust domain (default: the values')")
	cmd.Flags().StringVar(&revision, "revision", "", "control-plane revision (default: default)")
	cmd.Flags().StringVar(&pullPolicy, "image-pull-policy", "", "sidecar imagePullPolicy (default: the values')")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "do not print the summary on stderr")
	vf.add(cmd, "") // -f is the manifest here, as with kubectl
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		f, err := format()
		if err != nil {
			return err
		}
		if file == "" {
			return usageError{fmt.Errorf("no manifest: give -f <file> (or -f - for stdin)")}
		}
		var data []byte
		if file == "-" {
			data, err = io.ReadAll(a.env.In)
		} else {
			data, err = os.ReadFile(file)
		}
		if err != nil {
			return fmt.Errorf("read manifest: %w", err)
		}
		vals, err := vf.values(nil)
		if err != nil {
			return err
		}
		cfg := inject.ConfigFromValues(vals)
		if image != "" {
			cfg.Image = image
		}
		if trustDomain != "" {
			cfg.TrustDomain = trustDomain
		}
		if revision != "" {
			cfg.Revision = revision
		}
		if pullPolicy != "" {
			cfg.ImagePullPolicy = corev1.PullPolicy(pullPolicy)
		}
		if err := cfg.Validate(); err != nil {
			return usageError{fmt.Errorf("injection config: %w", err)}
		}
		objs, outcomes, err := inject.Stream(data, cfg)
		if err != nil {
			return err
		}
		var out []byte
		if f == output.JSON {
			out, err = inject.JSON(objs)
		} else {
			out, err = inject.YAML(objs)
		}
		if err != nil {
			return err
		}
		if _, err := a.env.Out.Write(out); err != nil {
			return err
		}
		if !quiet {
			for _, o := range outcomes {
				verb := "skipped"
				if o.Injected {
					verb = "injected"
				}
				fmt.Fprintf(a.env.Err, "%s %s (%s)\n", verb, o.Object, o.Reason)
			}
		}
		return nil
	}
	return cmd
}
