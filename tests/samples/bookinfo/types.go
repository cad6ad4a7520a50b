package main

// Book is details' answer to GET /details/<id>. The field names are those of
// Istio's Bookinfo (including "ISBN-10"), so assertions written against
// Istio's sample work against this one.
type Book struct {
	ID        int    `json:"id"`
	Author    string `json:"author"`
	Year      int    `json:"year"`
	Type      string `json:"type"`
	Pages     int    `json:"pages"`
	Publisher string `json:"publisher"`
	Language  string `json:"language"`
	ISBN10    string `json:"ISBN-10"`
	ISBN13    string `json:"ISBN-13"`
}

// Ratings is ratings' answer to GET /ratings/<id>: stars (1..5) per reviewer.
type Ratings struct {
	ID      int            `json:"id"`
	Ratings map[string]int `json:"ratings"`
}

// Reviews is reviews' answer to GET /reviews/<id>. Version and PodName say
// which Deployment and pod served it, so traffic-split tests can count them;
// RatingsError is set (and the ratings left out) when v2/v3 could not reach
// ratings — reviews still answers 200, as Istio's does.
type Reviews struct {
	ID           int      `json:"id"`
	Version      string   `json:"version"`
	PodName      string   `json:"podname"`
	Reviews      []Review `json:"reviews"`
	RatingsError string   `json:"ratingsError,omitempty"`
}

// Review is one reviewer's text and, from v2 on, their rating.
type Review struct {
	Reviewer string  `json:"reviewer"`
	Text     string  `json:"text"`
	Rating   *Rating `json:"rating,omitempty"`
}

// Rating is how a review's stars are drawn: v2 black, v3 red.
type Rating struct {
	Stars int    `json:"stars"`
	Color string `json:"color"`
}

// Product is one entry of productpage's catalogue (GET /api/v1/products).
type Product struct {
	ID          int    `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description"`
}

// ProductView is everything productpage shows for one product, as JSON from
// GET /api/v1/products/<id> and as HTML from GET /productpage. A failed
// upstream leaves its part out and sets the matching *Error to the reason;
// the response is still 200, like Istio's productpage.
type ProductView struct {
	Product
	// User is the signed-in user ("" when anonymous), forwarded upstream as
	// the end-user header.
	User         string   `json:"user"`
	Details      *Book    `json:"details,omitempty"`
	DetailsError string   `json:"detailsError,omitempty"`
	Reviews      *Reviews `json:"reviews,omitempty"`
	ReviewsError string   `json:"reviewsError,omitempty"`
}
