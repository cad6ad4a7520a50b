package main

import (
	"log/slog"
	"net/http"
	"regexp"
	"time"
)

// userCookie is the cookie /login sets (Istio's productpage uses a session;
// a plain cookie is enough for a sample).
const userCookie = "user"

// validUser keeps user names safe to put in a header, a cookie and a log
// line: letters, digits and . _ @ -, at most 64 characters.
var validUser = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`).MatchString

// userOf is the request's end user: the end-user header (what the mesh
// routes on), else the ?u= query, else the cookie /login set. Invalid names
// count as anonymous ("").
func userOf(r *http.Request) string {
	user := r.Header.Get("End-User")
	if user == "" {
		user = r.URL.Query().Get("u")
	}
	if user == "" {
		if c, err := r.Cookie(userCookie); err == nil {
			user = c.Value
		}
	}
	if !validUser(user) {
		return ""
	}
	return user
}

// recorder remembers what a handler answered, for the log line.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int
	err    error
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	if err != nil && r.err == nil {
		r.err = err
	}
	return n, err
}

// logRequests logs one line per request (method, path, status, size,
// duration, user, x-request-id) and sets X-Served-By to the pod name, which
// curl -n counts. /healthz is served but not logged: the readiness probe
// runs every second.
func logRequests(log *slog.Logger, podName string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if podName != "" {
			w.Header().Set("X-Served-By", podName)
		}
		if r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		attrs := []any{
			"method", r.Method, "path", r.URL.Path, "status", rec.status, "bytes", rec.bytes,
			"duration", time.Since(start).Round(time.Microsecond), "client", r.RemoteAddr,
			"user", userOf(r), "request_id", r.Header.Get("X-Request-Id"),
		}
		if rec.err != nil {
			attrs = append(attrs, "write_error", rec.err)
		}
		log.Info("request", attrs...)
	})
}
