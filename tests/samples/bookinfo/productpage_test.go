package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeReviews answers like reviews v2 with the given stars.
func fakeReviews(t *testing.T) *fakeUpstream {
	t.Helper()
	return newFake(t, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, buildReviews(0, "v2", "reviews-v2-xyz", &Ratings{Ratings: reviewerStars}, nil))
	})
}

func newTestProductPage(details, reviews string, timeout time.Duration) http.Handler {
	return NewProductPage(ProductPageConfig{DetailsURL: details, ReviewsURL: reviews, DetailsTimeout: timeout, ReviewsTimeout: timeout, Client: newClient()})
}

func TestProductAPI(t *testing.T) {
	details, reviews := newFake(t, NewDetails().ServeHTTP), fakeReviews(t)
	rec := get(t, newTestProductPage(details.URL, reviews.URL, time.Second), "/api/v1/products/0", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	got := decode[ProductView](t, rec)
	assert.Equal(t, "The Comedy of Errors", got.Title)
	assert.Empty(t, got.User)
	require.NotNil(t, got.Details)
	assert.Equal(t, "William Shakespeare", got.Details.Author)
	require.NotNil(t, got.Reviews)
	assert.Equal(t, "v2", got.Reviews.Version)
	assert.Equal(t, "reviews-v2-xyz", got.Reviews.PodName)
	assert.Equal(t, &Rating{Stars: 5, Color: "black"}, got.Reviews.Reviews[0].Rating)
	assert.Empty(t, got.DetailsError)
	assert.Empty(t, got.ReviewsError)
	assert.Empty(t, details.lastHeader().Get("End-User"), "anonymous: no end-user upstream")

	var raw map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw))
	assert.NotContains(t, raw, "reviewsError")
	assert.Equal(t, "v2", raw["reviews"].(map[string]any)["version"])
}

func TestProductCatalogue(t *testing.T) {
	h := newTestProductPage("http://127.0.0.1:1", "http://127.0.0.1:1", time.Second)
	rec := get(t, h, "/api/v1/products", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, products, decode[[]Product](t, rec))
	assert.Equal(t, http.StatusNotFound, get(t, h, "/api/v1/products/9", nil).Code)
	assert.Equal(t, http.StatusBadRequest, get(t, h, "/api/v1/products/x", nil).Code)
	assert.Equal(t, http.StatusOK, get(t, h, "/healthz", nil).Code)
	root := get(t, h, "/", nil)
	assert.Equal(t, http.StatusFound, root.Code)
	assert.Equal(t, "/productpage", root.Header().Get("Location"))
}

func TestProductPageForwardsUserAndTraceHeaders(t *testing.T) {
	trace := map[string]string{
		"X-Request-Id":      "req-42",
		"Traceparent":       "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"Tracestate":        "weft=1",
		"X-B3-Traceid":      "80f198ee56343ba864fe8b2a57d3eff7",
		"X-B3-Spanid":       "e457b5a2e4d86bd1",
		"X-B3-Parentspanid": "05e3ac9a4f6e3b90",
		"X-B3-Sampled":      "1",
	}
	tests := []struct {
		name   string
		path   string
		header map[string]string
		cookie string
		want   string
	}{
		{"header", "/api/v1/products/0", map[string]string{"End-User": "jason"}, "", "jason"},
		{"query", "/api/v1/products/0?u=jason", nil, "", "jason"},
		{"cookie", "/api/v1/products/0", nil, "jason", "jason"},
		{"header wins", "/api/v1/products/0?u=other", map[string]string{"End-User": "jason"}, "other", "jason"},
		{"invalid is anonymous", "/api/v1/products/0?u=" + "a%20b", nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			details, reviews := newFake(t, NewDetails().ServeHTTP), fakeReviews(t)
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			for k, v := range trace {
				req.Header.Set(k, v)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			if tt.cookie != "" {
				req.AddCookie(&http.Cookie{Name: userCookie, Value: tt.cookie})
			}
			rec := httptest.NewRecorder()
			newTestProductPage(details.URL, reviews.URL, time.Second).ServeHTTP(rec, req)
			require.Equal(t, http.StatusOK, rec.Code)
			assert.Equal(t, tt.want, decode[ProductView](t, rec).User)
			for _, f := range []*fakeUpstream{details, reviews} {
				h := f.lastHeader()
				assert.Equal(t, tt.want, h.Get("End-User"))
				assert.Len(t, h.Values("End-User"), min(1, len(tt.want)))
				for k, v := range trace {
					assert.Equal(t, v, h.Get(k), k)
				}
				assert.Empty(t, h.Get("Cookie"), "cookies stay at productpage")
			}
		})
	}
}

func TestProductPageUpstreamFailures(t *testing.T) {
	okDetails, okReviews := newFake(t, NewDetails().ServeHTTP), fakeReviews(t)
	slow := newFake(t, hang)
	broken := newFake(t, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "upstream connect error or disconnect/reset before headers. reset reason: overflow", http.StatusServiceUnavailable)
	})
	tests := []struct {
		name                 string
		details, reviews     string
		wantDetails, wantRev string
	}{
		{"reviews timeout", okDetails.URL, slow.URL, "", "timed out after 100ms"},
		{"reviews 503", okDetails.URL, broken.URL, "", "status 503: upstream connect error"},
		{"details timeout", slow.URL, okReviews.URL, "timed out after 100ms", ""},
		{"details refused", "http://127.0.0.1:1", okReviews.URL, "connection refused", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestProductPage(tt.details, tt.reviews, 100*time.Millisecond)
			start := time.Now()
			rec := get(t, h, "/api/v1/products/0", map[string]string{"End-User": "jason"})
			assert.Less(t, time.Since(start), 2*time.Second, "timeouts are enforced")
			require.Equal(t, http.StatusOK, rec.Code)
			got := decode[ProductView](t, rec)
			assert.Equal(t, tt.wantDetails == "", got.Details != nil)
			assert.Equal(t, tt.wantRev == "", got.Reviews != nil)
			if tt.wantDetails != "" {
				assert.Contains(t, got.DetailsError, tt.wantDetails)
			}
			if tt.wantRev != "" {
				assert.Contains(t, got.ReviewsError, tt.wantRev)
			}

			page := get(t, h, "/productpage", nil)
			require.Equal(t, http.StatusOK, page.Code)
			body := page.Body.String()
			assert.Equal(t, tt.wantDetails != "", strings.Contains(body, msgDetailsUnavailable), "details message")
			assert.Equal(t, tt.wantRev != "", strings.Contains(body, msgReviewsUnavailable), "reviews message")
		})
	}
}

func TestProductPageHTML(t *testing.T) {
	details, reviews := newFake(t, NewDetails().ServeHTTP), fakeReviews(t)
	rec := get(t, newTestProductPage(details.URL, reviews.URL, time.Second), "/productpage?u=jason", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
	body := rec.Body.String()
	for _, want := range []string{
		`<h1 id="title">The Comedy of Errors</h1>`,
		`<b id="user">jason</b>`,
		`<b id="reviews-version">v2</b>`,
		`<span id="reviews-pod">reviews-v2-xyz</span>`,
		`data-color="black"`,
		`★★★★★`, `★★★★☆`,
		`<dd>PublisherA</dd>`,
	} {
		assert.Contains(t, body, want)
	}
	assert.NotContains(t, body, "ratings unavailable")
	assert.NotContains(t, body, msgReviewsUnavailable)
}

func TestProductPageShowsRatingsUnavailable(t *testing.T) {
	details := newFake(t, NewDetails().ServeHTTP)
	reviews := newFake(t, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, buildReviews(0, "v3", "reviews-v3-1", nil, assert.AnError))
	})
	rec := get(t, newTestProductPage(details.URL, reviews.URL, time.Second), "/productpage", nil)
	body := rec.Body.String()
	assert.Contains(t, body, "ratings unavailable: "+assert.AnError.Error())
	assert.NotContains(t, body, `class="stars"`)
	assert.Contains(t, body, "Not signed in")
}

func TestLoginLogout(t *testing.T) {
	h := newTestProductPage("http://127.0.0.1:1", "http://127.0.0.1:1", time.Second)
	rec := get(t, h, "/login?user=jason", nil)
	assert.Equal(t, http.StatusFound, rec.Code)
	assert.Equal(t, "/productpage", rec.Header().Get("Location"))
	cookies := rec.Result().Cookies()
	require.Len(t, cookies, 1)
	assert.Equal(t, userCookie, cookies[0].Name)
	assert.Equal(t, "jason", cookies[0].Value)

	post := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader("username=jason&passwd=x"))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	prec := httptest.NewRecorder()
	h.ServeHTTP(prec, post)
	assert.Equal(t, http.StatusFound, prec.Code)
	assert.Equal(t, "jason", prec.Result().Cookies()[0].Value)

	assert.Equal(t, http.StatusBadRequest, get(t, h, "/login?user=a%0Db", nil).Code)
	assert.Equal(t, http.StatusBadRequest, get(t, h, "/login", nil).Code)

	out := get(t, h, "/logout", nil)
	assert.Equal(t, http.StatusFound, out.Code)
	assert.Equal(t, -1, out.Result().Cookies()[0].MaxAge)
}
