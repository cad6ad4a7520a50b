package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadConfigDefaults(t *testing.T) {
	pp, err := loadConfig("productpage", env(map[string]string{"POD_NAME": "productpage-v1-1"}))
	require.NoError(t, err)
	assert.Equal(t, "productpage-v1-1", pp.PodName)
	assert.Equal(t, "http://details:9080", pp.ProductPage.DetailsURL)
	assert.Equal(t, "http://reviews:9080", pp.ProductPage.ReviewsURL)
	assert.Equal(t, 3*time.Second, pp.ProductPage.DetailsTimeout)
	assert.Equal(t, 3*time.Second, pp.ProductPage.ReviewsTimeout)

	rv, err := loadConfig("reviews", env(map[string]string{"HOSTNAME": "host-1"}))
	require.NoError(t, err)
	assert.Equal(t, "host-1", rv.PodName)
	assert.Equal(t, "v1", rv.Reviews.Version)
	assert.Equal(t, "host-1", rv.Reviews.PodName)
	assert.Equal(t, "http://ratings:9080", rv.Reviews.RatingsURL)
	assert.Equal(t, 10*time.Second, rv.Reviews.RatingsTimeout)

	for _, app := range Apps {
		cfg, err := loadConfig(app, env(nil))
		require.NoError(t, err, app)
		_, err = newHandler(cfg)
		require.NoError(t, err, app)
	}
}

func TestLoadConfigOverrides(t *testing.T) {
	pp, err := loadConfig("productpage", env(map[string]string{
		"DETAILS_URL": "http://d:1", "REVIEWS_URL": "http://r:2", "DETAILS_TIMEOUT": "500ms", "REVIEWS_TIMEOUT": "2.5",
	}))
	require.NoError(t, err)
	assert.Equal(t, "http://d:1", pp.ProductPage.DetailsURL)
	assert.Equal(t, "http://r:2", pp.ProductPage.ReviewsURL)
	assert.Equal(t, 500*time.Millisecond, pp.ProductPage.DetailsTimeout)
	assert.Equal(t, 2500*time.Millisecond, pp.ProductPage.ReviewsTimeout)

	rv, err := loadConfig("reviews", env(map[string]string{"VERSION": "v3", "RATINGS_URL": "http://x:3", "RATINGS_TIMEOUT": "1s"}))
	require.NoError(t, err)
	assert.Equal(t, "v3", rv.Reviews.Version)
	assert.Equal(t, "http://x:3", rv.Reviews.RatingsURL)
	assert.Equal(t, time.Second, rv.Reviews.RatingsTimeout)
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		app  string
		env  map[string]string
		want string
	}{
		{"catalogue", nil, `unknown app "catalogue"`},
		{"reviews", map[string]string{"VERSION": "v9"}, `VERSION "v9"`},
		{"reviews", map[string]string{"RATINGS_TIMEOUT": "soon"}, `RATINGS_TIMEOUT "soon"`},
		{"productpage", map[string]string{"DETAILS_TIMEOUT": "0s"}, "must be positive"},
		{"productpage", map[string]string{"REVIEWS_TIMEOUT": "-1"}, "must be positive"},
	}
	for _, tt := range tests {
		_, err := loadConfig(tt.app, env(tt.env))
		assert.ErrorContains(t, err, tt.want)
	}
	_, err := newHandler(Config{App: "catalogue"})
	assert.Error(t, err)
}

func TestLogRequestsOneLinePerRequest(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	h := logRequests(log, "ratings-v1-1", NewRatings())
	rec := get(t, h, "/ratings/0", map[string]string{"End-User": "jason", "X-Request-Id": "req-7"})
	assert.Equal(t, "ratings-v1-1", rec.Header().Get("X-Served-By"))
	get(t, h, "/ratings/x", nil)
	get(t, h, "/healthz", nil)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 2, "one line per request, none for /healthz")
	for _, want := range []string{"method=GET", "path=/ratings/0", "status=200", "user=jason", "request_id=req-7"} {
		assert.Contains(t, lines[0], want)
	}
	assert.Contains(t, lines[1], "status=400")
}

// TestChain runs all four apps over real loopback HTTP, as the Deployments
// do, and checks the user and stars make it through every hop.
func TestChain(t *testing.T) {
	ratings := newFake(t, NewRatings().ServeHTTP)
	details := newFake(t, NewDetails().ServeHTTP)
	reviews := httptest.NewServer(newTestReviews(t, "v3", ratings.URL, time.Second))
	t.Cleanup(reviews.Close)
	page := httptest.NewServer(newTestProductPage(details.URL, reviews.URL, time.Second))
	t.Cleanup(page.Close)

	req, err := http.NewRequest(http.MethodGet, page.URL+"/productpage", nil)
	require.NoError(t, err)
	req.Header.Set("End-User", "jason")
	req.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body bytes.Buffer
	_, err = body.ReadFrom(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body.String(), `<b id="reviews-version">v3</b>`)
	assert.Contains(t, body.String(), `data-color="red"`)
	assert.Equal(t, "jason", ratings.lastHeader().Get("End-User"), "productpage → reviews → ratings")
	assert.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", ratings.lastHeader().Get("Traceparent"))
	assert.Equal(t, "jason", details.lastHeader().Get("End-User"))
}
