package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeUpstream is an httptest server that counts calls, records the last
// request's headers and answers with handle.
type fakeUpstream struct {
	*httptest.Server
	calls  atomic.Int32
	header atomic.Pointer[http.Header]
}

func newFake(t *testing.T, handle http.HandlerFunc) *fakeUpstream {
	t.Helper()
	f := &fakeUpstream{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		h := r.Header.Clone()
		f.header.Store(&h)
		handle(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// lastHeader is the headers of the last request the fake received.
func (f *fakeUpstream) lastHeader() http.Header {
	if h := f.header.Load(); h != nil {
		return *h
	}
	return nil
}

// hang blocks until the caller gives up (its timeout closes the connection).
func hang(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

func newTestReviews(t *testing.T, version, ratingsURL string, timeout time.Duration) http.Handler {
	t.Helper()
	h, err := NewReviews(ReviewsConfig{Version: version, PodName: "reviews-" + version + "-abc", RatingsURL: ratingsURL, RatingsTimeout: timeout, Client: newClient()})
	require.NoError(t, err)
	return h
}

func TestReviewsVersions(t *testing.T) {
	ratings := newFake(t, NewRatings().ServeHTTP)
	tests := []struct {
		version   string
		wantColor string
		wantCalls int32
	}{
		{"v1", "", 0},
		{"v2", "black", 1},
		{"v3", "red", 1},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			before := ratings.calls.Load()
			rec := get(t, newTestReviews(t, tt.version, ratings.URL, time.Second), "/reviews/0", nil)
			require.Equal(t, http.StatusOK, rec.Code)
			got := decode[Reviews](t, rec)
			assert.Equal(t, tt.wantCalls, ratings.calls.Load()-before, "calls to ratings")
			assert.Equal(t, tt.version, got.Version)
			assert.Equal(t, "reviews-"+tt.version+"-abc", got.PodName)
			assert.Empty(t, got.RatingsError)
			require.Len(t, got.Reviews, 2)
			if tt.wantColor == "" {
				assert.Nil(t, got.Reviews[0].Rating)
				assert.NotContains(t, rec.Body.String(), `"rating"`)
				return
			}
			assert.Equal(t, &Rating{Stars: 5, Color: tt.wantColor}, got.Reviews[0].Rating)
			assert.Equal(t, &Rating{Stars: 4, Color: tt.wantColor}, got.Reviews[1].Rating)
		})
	}
}

func TestReviewsSurviveRatingsFailures(t *testing.T) {
	abort := newFake(t, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "fault filter abort", http.StatusServiceUnavailable)
	})
	slow := newFake(t, hang)
	tests := []struct {
		name, url string
		want      string
	}{
		{"abort", abort.URL, "status 503: fault filter abort"},
		{"timeout", slow.URL, "timed out after 50ms"},
		{"refused", "http://127.0.0.1:1", "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			rec := get(t, newTestReviews(t, "v3", tt.url, 50*time.Millisecond), "/reviews/0", nil)
			assert.Less(t, time.Since(start), 2*time.Second)
			require.Equal(t, http.StatusOK, rec.Code)
			got := decode[Reviews](t, rec)
			assert.Contains(t, got.RatingsError, tt.want)
			assert.Equal(t, "v3", got.Version)
			require.Len(t, got.Reviews, 2)
			assert.Nil(t, got.Reviews[0].Rating)
		})
	}
}

func TestReviewsPropagateHeadersToRatings(t *testing.T) {
	ratings := newFake(t, NewRatings().ServeHTTP)
	in := map[string]string{
		"end-user":     "jason",
		"x-request-id": "req-1",
		"traceparent":  "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"tracestate":   "weft=1",
		"x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7",
		"x-b3-spanid":  "e457b5a2e4d86bd1",
		"x-b3-sampled": "1",
		"b3":           "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1",
		"x-private":    "not forwarded",
	}
	rec := get(t, newTestReviews(t, "v2", ratings.URL, time.Second), "/reviews/0", in)
	require.Equal(t, http.StatusOK, rec.Code)
	h := ratings.lastHeader()
	for k, v := range in {
		if k == "x-private" {
			assert.Empty(t, h.Get(k))
			continue
		}
		assert.Equal(t, v, h.Get(k), k)
	}
}

func TestBuildReviews(t *testing.T) {
	r := buildReviews(3, "v2", "p", &Ratings{Ratings: map[string]int{"Reviewer2": 1}}, nil)
	assert.Equal(t, 3, r.ID)
	assert.Nil(t, r.Reviews[0].Rating, "a reviewer without a rating gets no stars")
	assert.Equal(t, &Rating{Stars: 1, Color: "black"}, r.Reviews[1].Rating)
	assert.Nil(t, reviewTexts[1].Rating, "the shared texts are not modified")

	r = buildReviews(0, "v3", "p", nil, errors.New("boom"))
	assert.Equal(t, "boom", r.RatingsError)
	assert.Nil(t, r.Reviews[0].Rating)
}

func TestReviewsRejectsUnknownVersion(t *testing.T) {
	_, err := NewReviews(ReviewsConfig{Version: "v4"})
	assert.ErrorContains(t, err, `"v4"`)
}
