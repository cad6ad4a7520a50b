package node

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/coreos/go-iptables/iptables"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/weftmesh/weft/cni-plugin/ipam"
	"github.com/weftmesh/weft/cni-plugin/redirect"
)

// mirrorPodAnnotation marks the API object of a static pod: deleting it
// does not restart the pod, so such pods are only reported.
const mirrorPodAnnotation = "kubernetes.io/config.mirror"

// check inspects every candidate pod once and reports the newly broken
// ones. It keeps going past errors and returns them all.
func (c *RedirectChecker) check(ctx context.Context) error {
	pods, err := c.pods.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	netnsByIP, err := c.allocations()
	if err != nil {
		return err
	}
	seen := map[types.UID]bool{}
	var errs []error
	for _, p := range pods {
		if !c.candidate(p) {
			continue
		}
		ip, err := netip.ParseAddr(p.Status.PodIP)
		netns, ok := netnsByIP[ip]
		if err != nil || !ok {
			continue // an address weft-bridge did not give (or just released)
		}
		seen[p.UID] = true
		missing, err := c.inspect(netns)
		if errors.As(err, new(ns.NSPathNotExistErr)) {
			continue // the sandbox is going away
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("inspect pod %s/%s (netns %s): %w", p.Namespace, p.Name, netns, err))
			continue
		}
		if len(missing) == 0 {
			delete(c.flagged, p.UID)
			continue
		}
		if !c.flagged[p.UID] {
			errs = append(errs, c.report(ctx, p, netns, missing))
		}
	}
	for uid := range c.flagged {
		if !seen[uid] {
			delete(c.flagged, uid) // deleted, restarted or finished
		}
	}
	c.metrics.missingPods.Store(int64(len(c.flagged)))
	return errors.Join(errs...)
}

// allocations maps each pod address of this node to its netns path.
func (c *RedirectChecker) allocations() (map[netip.Addr]string, error) {
	store, err := ipam.Open(c.ipamDir, NetworkName)
	if err != nil {
		return nil, err
	}
	st, err := store.View()
	if err != nil {
		return nil, fmt.Errorf("read ipam state: %w", err)
	}
	out := make(map[netip.Addr]string, len(st.Allocations))
	for ip, a := range st.Allocations {
		if a.Netns != "" {
			out[ip] = a.Netns
		}
	}
	return out, nil
}

// A flagged pod is re-read before it is reported. Only --repair=restart
// deletes pods: that permission is a role of its own, weft-cni-node-repair,
// which the chart (--repair=report) does not render.
// +kubebuilder:rbac:groups="",resources=pods,verbs=get
// +kubebuilder:rbac:groups="",resources=pods,verbs=delete,roleName=weft-cni-node-repair

// report confirms with the API server that the pod is still the one
// holding the address (the cache may lag a restart), then emits the event,
// counts it and, with RepairRestart, deletes the pod.
func (c *RedirectChecker) report(ctx context.Context, cached *corev1.Pod, netns string, missing []string) error {
	log := logr.FromContextOrDiscard(ctx).WithValues("pod", cached.Namespace+"/"+cached.Name, "netns", netns, "missing", missing)
	p, err := c.client.CoreV1().Pods(cached.Namespace).Get(ctx, cached.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("confirm pod %s/%s: %w", cached.Namespace, cached.Name, err)
	}
	if p.UID != cached.UID || p.Status.PodIP != cached.Status.PodIP || !c.candidate(p) {
		return nil
	}
	c.flagged[p.UID] = true
	c.metrics.redirectMissing.Add(ctx, 1)
	restart := c.cfg.Repair == RepairRestart
	_, mirror := p.Annotations[mirrorPodAnnotation]
	action := "delete the pod to restart it with the rules (weft-cni-node runs with --repair=report)"
	switch {
	case restart && mirror:
		action = "static pod: restart it on the node (deleting its mirror pod would not)"
	case restart:
		action = "deleting the pod so its owner recreates it"
	}
	log.Info("meshed pod lacks redirect rules", "repair", c.cfg.Repair)
	c.recorder.Eventf(p, corev1.EventTypeWarning, EventReasonRedirectMissing,
		"Network namespace lacks Weft's redirect rules (%s): the pod's traffic bypasses its sidecar; %s.",
		strings.Join(missing, ", "), action)
	if !restart || mirror {
		return nil
	}
	uid := p.UID
	err = c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("delete pod %s/%s without redirect rules (--repair=restart needs RBAC verb delete on pods): %w", p.Namespace, p.Name, err)
	}
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete pod %s/%s without redirect rules: %w", p.Namespace, p.Name, err)
	}
	c.metrics.redirectRestarts.Add(ctx, 1)
	log.Info("deleted meshed pod without redirect rules")
	return nil
}

// inspectNetns enters a pod's netns and lists what of Weft's redirect
// chains and jumps it lacks. Nothing is changed.
func inspectNetns(path string) ([]string, error) {
	netns, err := ns.GetNS(path)
	if err != nil {
		return nil, err
	}
	defer netns.Close()
	var missing []string
	err = netns.Do(func(ns.NetNS) error {
		ipt, err := iptables.New()
		if err != nil {
			return fmt.Errorf("find iptables: %w", err)
		}
		missing, err = redirect.Missing(ipt)
		return err
	})
	return missing, err
}
