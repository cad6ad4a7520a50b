package main

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/weftmesh/weft/api/annotation"
)

// weft-redirect runs with weft-cni-node's ServiceAccount token (the
// kubeconfig weft-cni-node writes), so this is part of weft-cni-node's role.
// +kubebuilder:rbac:groups="",resources=pods,verbs=get

// sidecarStatus reads the pod's StatusAnnotation from the API server.
// meshed is false for pods without it. A pod that cannot be read, or whose
// status does not parse, is an error: the pod may have a sidecar whose
// traffic would otherwise bypass it.
func sidecarStatus(ctx context.Context, conf *config, ref podRef) (st annotation.SidecarStatus, meshed bool, err error) {
	rc, err := clientcmd.BuildConfigFromFlags("", conf.Kubeconfig)
	if err != nil {
		return st, false, types.NewError(types.ErrPluginNotAvailable, "load kubeconfig "+conf.Kubeconfig, err.Error())
	}
	rc.Timeout, rc.UserAgent = conf.timeout, "weft-redirect"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return st, false, fmt.Errorf("create kubernetes client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, conf.timeout)
	defer cancel()
	pod, err := client.CoreV1().Pods(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		details := err.Error()
		var nerr net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &nerr) && nerr.Timeout() {
			details = fmt.Sprintf("no answer within %s: %s", conf.timeout, details)
		}
		return st, false, types.NewError(types.ErrTryAgainLater,
			fmt.Sprintf("look up pod %s at %s (kubeconfig %s)", ref, rc.Host, conf.Kubeconfig), details)
	}
	if ref.UID != "" && string(pod.UID) != ref.UID {
		return st, false, types.NewError(types.ErrTryAgainLater,
			fmt.Sprintf("pod %s is uid %s, the sandbox is for uid %s", ref, pod.UID, ref.UID), "")
	}
	raw, ok := pod.Annotations[annotation.StatusAnnotation]
	if !ok {
		return st, false, nil
	}
	st, err = annotation.ParseStatus(raw)
	if err != nil {
		return st, false, fmt.Errorf("pod %s: %w", ref, err)
	}
	return st, true, nil
}
