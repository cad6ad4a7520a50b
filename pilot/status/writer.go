package status

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weftmesh/weft/api/v1alpha1"
	"github.com/weftmesh/weft/pilot/model"
)

// Config configures a Writer.
type Config struct {
	// Dynamic reads and writes the objects' status subresources.
	Dynamic dynamic.Interface
	// Model is the state statuses are computed from.
	Model *model.Store
	// Debounce is the quiet period after a model change before statuses
	// are reconciled; zero means 200ms.
	Debounce time.Duration
	// Now is the clock for condition transition times; nil means time.Now.
	Now func() time.Time
	// Tracing says pilot has a tracing collector (--tracing-collector);
	// without one, Telemetries that set tracing report it in ResolvedRefs.
	Tracing bool
}

// Writer keeps route and policy statuses in line with the model, in the
// reconcile style: model events only poke it; each round computes every
// status from one View and writes those that changed since it last wrote
// them (or that differ from the object), retrying the round after errors.
type Writer struct {
	cfg     Config
	trigger chan struct{}
	written map[string]string // object → fingerprint of the status last written
}

// New checks cfg and builds a Writer.
func New(cfg Config) (*Writer, error) {
	if cfg.Dynamic == nil || cfg.Model == nil {
		return nil, errors.New("status writer needs a dynamic client and a model")
	}
	cfg.Debounce = cmp.Or(cfg.Debounce, 200*time.Millisecond)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Writer{cfg: cfg, trigger: make(chan struct{}, 1), written: map[string]string{}}, nil
}

// Run reconciles statuses until ctx is done.
func (w *Writer) Run(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx).WithName("status")
	w.cfg.Model.Subscribe(func(model.Event) { w.poke() })
	w.poke()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.trigger:
		case <-retry.C:
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(w.cfg.Debounce):
		}
		if err := w.Reconcile(ctx, w.cfg.Model.View()); err != nil && ctx.Err() == nil {
			log.Error(err, "write status (retrying)")
			retry.Reset(5 * time.Second)
		}
	}
}

func (w *Writer) poke() {
	select {
	case w.trigger <- struct{}{}:
	default:
	}
}

// Reconcile writes the statuses of v's routes and policies that changed.
func (w *Writer) Reconcile(ctx context.Context, v *model.View) error {
	var errs []error
	seen := map[string]bool{}
	routes := v.RouteTable().Status()
	for _, r := range v.Routes() {
		gvr, obj := model.HTTPRouteResource, any(&gatewayv1.HTTPRoute{})
		if r.Kind == model.KindGRPCRoute {
			gvr, obj = model.GRPCRouteResource, &gatewayv1.GRPCRoute{}
		}
		st := routes[r.RouteKey()]
		errs = append(errs, w.write(ctx, gvr, r.Key(), r.Generation, fmt.Sprintf("%+v", st), obj, seen, func(now time.Time) bool {
			switch o := obj.(type) {
			case *gatewayv1.HTTPRoute:
				next := RouteParents(o.Spec.ParentRefs, st, o.Status.Parents, now)
				if SameParents(next, o.Status.Parents) {
					return false
				}
				o.Status.Parents = next
			case *gatewayv1.GRPCRoute:
				next := RouteParents(o.Spec.ParentRefs, st, o.Status.Parents, now)
				if SameParents(next, o.Status.Parents) {
					return false
				}
				o.Status.Parents = next
			}
			return true
		}))
	}
	traffic := v.TrafficTable().Status()
	for _, p := range v.TrafficPolicies() {
		st, obj := traffic[p.Key()], &v1alpha1.TrafficPolicy{}
		errs = append(errs, w.write(ctx, v1alpha1.TrafficPolicyResource, p.Key(), p.Generation, policyFingerprint(st), obj, seen,
			policyUpdate(st, &obj.Status)))
	}
	for _, p := range v.AuthzPolicies() {
		st, obj := AuthzStatus(p), &v1alpha1.AuthorizationPolicy{}
		errs = append(errs, w.write(ctx, v1alpha1.AuthorizationPolicyResource, p.Key(), p.Generation, policyFingerprint(st), obj, seen,
			policyUpdate(st, &obj.Status)))
	}
	for _, p := range v.Telemetries() {
		st, obj := TelemetryStatus(p, v.TelemetryWinner(p.Namespace), v.RootNamespace(), w.cfg.Tracing), &v1alpha1.Telemetry{}
		errs = append(errs, w.write(ctx, v1alpha1.TelemetryResource, p.Key(), p.Generation, policyFingerprint(st), obj, seen,
			policyUpdate(st, &obj.Status)))
	}
	for k := range w.written {
		if !seen[k] {
			delete(w.written, k)
		}
	}
	return errors.Join(errs...)
}

func policyFingerprint(st *model.PolicyStatus) string {
	refs := model.Condition{}
	if st.ResolvedRefs != nil {
		refs = *st.ResolvedRefs
	}
	return fmt.Sprintf("%d %+v %t %+v", st.Generation, st.Accepted, st.ResolvedRefs != nil, refs)
}

func policyUpdate(st *model.PolicyStatus, status *v1alpha1.PolicyStatus) func(time.Time) bool {
	return func(now time.Time) bool {
		next := PolicyConditions(st, status.Conditions, now)
		if SameConditions(next, status.Conditions) && status.ObservedGeneration == st.Generation {
			return false
		}
		status.Conditions, status.ObservedGeneration = next, st.Generation
		return true
	}
}

// Route and policy status: the object is read for its generation, then its
// status subresource written (MeshTLS has no status pilot computes).
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes;grpcroutes,verbs=get
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes/status;grpcroutes/status,verbs=update
// +kubebuilder:rbac:groups=mesh.weft.dev,resources=trafficpolicies;authorizationpolicies;telemetries,verbs=get
// +kubebuilder:rbac:groups=mesh.weft.dev,resources=trafficpolicies/status;authorizationpolicies/status;telemetries/status,verbs=update

// write fetches one object into obj, lets update change its status (false:
// nothing to do) and writes the status subresource. fingerprint is the
// computed status: an object whose fingerprint was written already is
// skipped without an API call.
func (w *Writer) write(ctx context.Context, gvr schema.GroupVersionResource, k model.Key, gen int64, fingerprint string,
	obj any, seen map[string]bool, update func(time.Time) bool,
) error {
	id := gvr.Resource + "/" + k.String()
	seen[id] = true
	if w.written[id] == fingerprint {
		return nil
	}
	res := w.cfg.Dynamic.Resource(gvr).Namespace(k.Namespace)
	u, err := res.Get(ctx, k.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get %s: %w", id, err)
	}
	if u.GetGeneration() != gen {
		return nil // the model has not seen this generation yet; its event will come
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return fmt.Errorf("decode %s: %w", id, err)
	}
	if update(w.cfg.Now()) {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return fmt.Errorf("encode %s: %w", id, err)
		}
		if _, err := res.UpdateStatus(ctx, &unstructured.Unstructured{Object: m}, metav1.UpdateOptions{FieldManager: "weft-pilot"}); err != nil {
			return fmt.Errorf("update status of %s: %w", id, err)
		}
	}
	w.written[id] = fingerprint
	return nil
}
