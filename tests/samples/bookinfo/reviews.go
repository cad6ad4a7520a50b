package main

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// starColors maps each reviews version to the colour of its stars: v1 shows
// none and never calls ratings; v2 and v3 call ratings and draw black and
// red stars. This is the difference traffic-shifting tests look for.
var starColors = map[string]string{"v1": "", "v2": "black", "v3": "red"}

// reviewTexts are the two reviews, in order.
var reviewTexts = []Review{
	{Reviewer: "Reviewer1", Text: "A farce that runs like clockwork: two pairs of twins, one long day, and not a dull scene in it."},
	{Reviewer: "Reviewer2", Text: "Slighter than the later comedies, but the confusion builds so well that the reunion still lands."},
}

// ReviewsConfig is one reviews Deployment's settings (from VERSION,
// POD_NAME, RATINGS_URL and RATINGS_TIMEOUT).
type ReviewsConfig struct {
	// Version is v1, v2 or v3.
	Version string
	// PodName is reported in every answer, so tests can count pods.
	PodName string
	// RatingsURL is ratings' base URL, e.g. http://ratings:9080.
	RatingsURL string
	// RatingsTimeout bounds the call to ratings (10s by default, like the
	// hard-coded timeout of Istio's reviews; longer than productpage's wait
	// for reviews, which is what the delay-fault task shows).
	RatingsTimeout time.Duration
	// Client is used for ratings calls.
	Client *http.Client
}

// NewReviews serves reviews:
//
//	GET /reviews/<id>  two reviews as JSON (Reviews), with stars from v2 on
//	GET /healthz       200 "ok"
//
// v2 and v3 forward the propagated headers (end-user, trace context) to
// ratings; when ratings fails they still answer 200 with ratingsError.
func NewReviews(cfg ReviewsConfig) (http.Handler, error) {
	color, ok := starColors[cfg.Version]
	if !ok {
		return nil, fmt.Errorf("reviews version %q: want v1, v2 or v3", cfg.Version)
	}
	ratings := upstream{base: cfg.RatingsURL, timeout: cfg.RatingsTimeout, client: cfg.Client}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /reviews/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			badRequest(w, err)
			return
		}
		var got *Ratings
		var ratingsErr error
		if color != "" {
			got = &Ratings{}
			ratingsErr = ratings.get(r.Context(), "/ratings/"+strconv.Itoa(id), forwardHeaders(r.Header), got)
		}
		writeJSON(w, http.StatusOK, buildReviews(id, cfg.Version, cfg.PodName, got, ratingsErr))
	})
	return mux, nil
}

// buildReviews is the pure core of reviews: the answer for one product given
// what ratings said (nil for v1, which doesn't ask).
func buildReviews(id int, version, podName string, ratings *Ratings, ratingsErr error) Reviews {
	out := Reviews{ID: id, Version: version, PodName: podName, Reviews: make([]Review, len(reviewTexts))}
	copy(out.Reviews, reviewTexts)
	if ratingsErr != nil {
		out.RatingsError = ratingsErr.Error()
		return out
	}
	if ratings == nil {
		return out
	}
	for i, rv := range out.Reviews {
		if stars, ok := ratings.Ratings[rv.Reviewer]; ok {
			out.Reviews[i].Rating = &Rating{Stars: stars, Color: starColors[version]}
		}
	}
	return out
}
