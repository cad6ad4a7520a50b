package kube

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/clientcmd"
)

// UserError is an error whose message is already the sentence to show:
// Message returns it without the wrapping context.
type UserError struct{ msg string }

func (e *UserError) Error() string { return e.msg }

// Userf builds a UserError.
func Userf(format string, args ...any) error { return &UserError{msg: fmt.Sprintf(format, args...)} }

// Humanize rewrites the errors of loading a kubeconfig and of reaching the
// API server as sentences that say what to do; other errors (and nil) pass
// through. host names the API server when the error does not.
func Humanize(err error, host string) error {
	if err == nil {
		return nil
	}
	if msg, ok := humane(err, host); ok {
		return &UserError{msg: msg}
	}
	return err
}

// Message is the one-line text of err for the terminal: the humane
// sentence when one applies, else the error with line breaks folded.
func Message(err error) string {
	var ue *UserError
	if errors.As(err, &ue) {
		return oneLine(ue.msg)
	}
	if msg, ok := humane(err, ""); ok {
		return oneLine(msg)
	}
	return oneLine(err.Error())
}

func humane(err error, host string) (string, bool) {
	var ue *UserError
	switch {
	case errors.As(err, &ue):
		return ue.msg, true
	case clientcmd.IsContextNotFound(err):
		return fmt.Sprintf("%v: pick one of `kubectl config get-contexts` with --context", trimInvalid(err)), true
	case clientcmd.IsEmptyConfig(err):
		return "no kubeconfig found: set KUBECONFIG or pass --kubeconfig", true
	case clientcmd.IsConfigurationInvalid(err):
		return "invalid kubeconfig: " + trimInvalid(err), true
	case apierrors.IsForbidden(err):
		return "permission denied: " + statusMessage(err) + " (ask a cluster admin for this RBAC permission)", true
	case apierrors.IsUnauthorized(err):
		return fmt.Sprintf("the API server%s rejected the credentials (401 Unauthorized): log in again or check --kubeconfig, --context and --user", at(host)), true
	}
	var ue2 *url.Error
	if errors.As(err, &ue2) {
		if u, perr := url.Parse(ue2.URL); perr == nil && host == "" {
			host = u.Scheme + "://" + u.Host
		}
	}
	var certErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	if errors.As(err, &certErr) || errors.As(err, &hostErr) || errors.As(err, &invalid) || strings.Contains(err.Error(), "x509: ") {
		return fmt.Sprintf("cannot verify the certificate of the API server%s: %s (wrong cluster in the kubeconfig, or --certificate-authority needed)", at(host), innermost(err)), true
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot reach the Kubernetes API server%s: connection refused (is the cluster running? check --kubeconfig and --context)", at(host)), true
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("cannot reach the Kubernetes API server%s: host %q not found (check --kubeconfig and --context)", at(host), dnsErr.Name), true
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return fmt.Sprintf("cannot reach the Kubernetes API server%s: timed out (is the cluster running and reachable from here?)", at(host)), true
	case errors.As(err, &opErr), ue2 != nil && !apierrors.IsNotFound(err):
		return fmt.Sprintf("cannot reach the Kubernetes API server%s: %s", at(host), innermost(err)), true
	}
	return "", false
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func at(host string) string {
	if host == "" {
		return ""
	}
	return " at " + host
}

func statusMessage(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) && se.Status().Message != "" {
		return se.Status().Message
	}
	return err.Error()
}

// innermost is the message of the deepest wrapped error, without the URL
// and operation prefixes of url.Error and net.OpError.
func innermost(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

func trimInvalid(err error) string {
	return strings.TrimPrefix(err.Error(), "invalid configuration: ")
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\r", "")
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}
