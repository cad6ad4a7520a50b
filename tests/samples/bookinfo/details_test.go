package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// get serves one GET through h and returns the recorder.
func get(t *testing.T, h http.Handler, path string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// decode unmarshals a recorder's JSON body into a new T.
func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var v T
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v), rec.Body.String())
	return v
}

func TestDetails(t *testing.T) {
	h := NewDetails()
	rec := get(t, h, "/details/7", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw))
	assert.Equal(t, map[string]any{
		"id": 7.0, "author": "William Shakespeare", "year": 1595.0, "type": "paperback", "pages": 200.0,
		"publisher": "PublisherA", "language": "English", "ISBN-10": "1234567890", "ISBN-13": "123-1234567890",
	}, raw)
	assert.Equal(t, 0, book.ID, "the shared book is not modified")
}

func TestRatings(t *testing.T) {
	h := NewRatings()
	rec := get(t, h, "/ratings/0", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, `{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}`, rec.Body.String())
}

func TestBackendsRejectBadRequests(t *testing.T) {
	for name, h := range map[string]http.Handler{"details": NewDetails(), "ratings": NewRatings()} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, http.StatusBadRequest, get(t, h, "/"+name+"/abc", nil).Code)
			assert.Equal(t, http.StatusBadRequest, get(t, h, "/"+name+"/-1", nil).Code)
			assert.Equal(t, http.StatusNotFound, get(t, h, "/nothing", nil).Code)
			post := httptest.NewRecorder()
			h.ServeHTTP(post, httptest.NewRequest(http.MethodPost, "/"+name+"/0", nil))
			assert.Equal(t, http.StatusMethodNotAllowed, post.Code)
			health := get(t, h, "/healthz", nil)
			assert.Equal(t, http.StatusOK, health.Code)
			assert.Equal(t, "ok\n", health.Body.String())
		})
	}
}
