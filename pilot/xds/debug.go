package xds

import (
	"encoding/json"
	"net/http"
)

// DebugHandler serves /debug/syncz: the JSON array of ProxyStatus that
// meshctl proxy-status renders (like istiod's /debug/syncz). ?proxy=<node
// id> narrows it to one proxy. Mount it on pilot's debug/metrics mux, which
// must not be reachable from outside the control plane.
func (s *Server) DebugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/syncz", func(w http.ResponseWriter, r *http.Request) {
		all := s.SyncStatus()
		if id := r.URL.Query().Get("proxy"); id != "" {
			out := []ProxyStatus{}
			for _, p := range all {
				if p.NodeID == id {
					out = append(out, p)
				}
			}
			all = out
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(all); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	return mux
}
