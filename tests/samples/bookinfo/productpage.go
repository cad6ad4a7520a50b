package main

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// products is the store's catalogue; /productpage shows the first.
var products = []Product{{
	ID:          0,
	Title:       "The Comedy of Errors",
	Description: "Shakespeare's shortest comedy: two sets of identical twins, separated as infants, end up in the same city on the same day, and nobody can tell who is who.",
}}

// ProductPageConfig is productpage's settings (from DETAILS_URL, REVIEWS_URL,
// DETAILS_TIMEOUT and REVIEWS_TIMEOUT).
type ProductPageConfig struct {
	// DetailsURL and ReviewsURL are the upstreams' base URLs.
	DetailsURL, ReviewsURL string
	// DetailsTimeout and ReviewsTimeout bound each call (3s by default).
	DetailsTimeout, ReviewsTimeout time.Duration
	// Client is used for both upstreams.
	Client *http.Client
}

type productPage struct {
	details, reviews upstream
}

// NewProductPage serves productpage:
//
//	GET /productpage             the HTML page for product 0
//	GET /api/v1/products         the catalogue ([]Product)
//	GET /api/v1/products/<id>    the product with its details and reviews (ProductView)
//	GET|POST /login?user=<name>  sets the user cookie, redirects to /productpage
//	GET /logout                  clears it
//	GET /healthz                 200 "ok"
//
// The user is the end-user header, else ?u=, else the cookie; productpage
// sends it to details and reviews as end-user, with the trace headers. An
// upstream failure is reported in the page and in *Error fields, never as a
// non-200 answer.
func NewProductPage(cfg ProductPageConfig) http.Handler {
	p := &productPage{
		details: upstream{base: cfg.DetailsURL, timeout: cfg.DetailsTimeout, client: cfg.Client},
		reviews: upstream{base: cfg.ReviewsURL, timeout: cfg.ReviewsTimeout, client: cfg.Client},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/productpage", http.StatusFound)
	})
	mux.HandleFunc("GET /productpage", func(w http.ResponseWriter, r *http.Request) {
		renderPage(w, p.view(r, products[0]))
	})
	mux.HandleFunc("GET /api/v1/products", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, products)
	})
	mux.HandleFunc("GET /api/v1/products/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			badRequest(w, err)
			return
		}
		if id >= len(products) {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("product %d not found", id)})
			return
		}
		writeJSON(w, http.StatusOK, p.view(r, products[id]))
	})
	mux.HandleFunc("GET /login", login)
	mux.HandleFunc("POST /login", login)
	mux.HandleFunc("GET /logout", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: userCookie, Path: "/", MaxAge: -1})
		http.Redirect(w, r, "/productpage", http.StatusFound)
	})
	return mux
}

// view asks details and reviews (in parallel, each with its own timeout)
// about one product, on behalf of the request's user.
func (p *productPage) view(r *http.Request, prod Product) ProductView {
	v := ProductView{Product: prod, User: userOf(r)}
	hdr := forwardHeaders(r.Header)
	hdr.Del("End-User")
	if v.User != "" {
		hdr.Set("End-User", v.User)
	}
	id := strconv.Itoa(prod.ID)
	var wg sync.WaitGroup
	wg.Go(func() {
		var b Book
		if err := p.details.get(r.Context(), "/details/"+id, hdr, &b); err != nil {
			v.DetailsError = err.Error()
			return
		}
		v.Details = &b
	})
	wg.Go(func() {
		var rv Reviews
		if err := p.reviews.get(r.Context(), "/reviews/"+id, hdr, &rv); err != nil {
			v.ReviewsError = err.Error()
			return
		}
		v.Reviews = &rv
	})
	wg.Wait()
	return v
}

// login signs a user in with a cookie (GET ?user= or a POSTed username
// form field, as Istio's sign-in form sends).
func login(w http.ResponseWriter, r *http.Request) {
	user := r.FormValue("user")
	if user == "" {
		user = r.FormValue("username")
	}
	if !validUser(user) {
		badRequest(w, fmt.Errorf("login: user %q: want 1-64 of A-Z a-z 0-9 . _ @ -", user))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: userCookie, Value: user, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/productpage", http.StatusFound)
}
