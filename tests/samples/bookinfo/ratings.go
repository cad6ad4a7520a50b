package main

import (
	"maps"
	"net/http"
)

// reviewerStars are the fixed ratings every product gets.
var reviewerStars = map[string]int{"Reviewer1": 5, "Reviewer2": 4}

// NewRatings serves ratings:
//
//	GET /ratings/<id>  {"id":<id>,"ratings":{"Reviewer1":5,"Reviewer2":4}}
//	GET /healthz       200 "ok"
func NewRatings() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /ratings/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			badRequest(w, err)
			return
		}
		writeJSON(w, http.StatusOK, Ratings{ID: id, Ratings: maps.Clone(reviewerStars)})
	})
	return mux
}
