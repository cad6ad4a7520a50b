package main

import "net/http"

// book is the one book in the store; details answers with it for every id,
// as Istio's details does, so productpage can ask for any product.
var book = Book{
	Author:    "William Shakespeare",
	Year:      1595,
	Type:      "paperback",
	Pages:     200,
	Publisher: "PublisherA",
	Language:  "English",
	ISBN10:    "1234567890",
	ISBN13:    "123-1234567890",
}

// NewDetails serves details:
//
//	GET /details/<id>  the book as JSON (Book), id echoed back
//	GET /healthz       200 "ok"
func NewDetails() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /details/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			badRequest(w, err)
			return
		}
		b := book
		b.ID = id
		writeJSON(w, http.StatusOK, b)
	})
	return mux
}
