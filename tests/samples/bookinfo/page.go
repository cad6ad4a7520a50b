package main

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strings"
)

// Messages productpage shows when an upstream fails; the same words as
// Istio's, so task guides' checks carry over.
const (
	msgDetailsUnavailable = "Error fetching product details!"
	msgReviewsUnavailable = "Sorry, product reviews are currently unavailable for this book."
)

// pageTemplate is /productpage. Stable ids and classes (user,
// reviews-version, stars with data-color, ratings-error) are for tests.
var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"stars":              stars,
	"detailsUnavailable": func() string { return msgDetailsUnavailable },
	"reviewsUnavailable": func() string { return msgReviewsUnavailable },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Bookinfo: {{.Title}}</title></head>
<body>
<p class="user">{{if .User}}Signed in as <b id="user">{{.User}}</b> (<a href="/logout">sign out</a>){{else}}Not signed in (<a href="/login?user=jason">sign in as jason</a>){{end}}</p>
<h1 id="title">{{.Title}}</h1>
<p class="description">{{.Description}}</p>
<h2>Book Details</h2>
{{with .Details}}<dl class="details">
<dt>Type</dt><dd>{{.Type}}</dd><dt>Pages</dt><dd>{{.Pages}}</dd><dt>Publisher</dt><dd>{{.Publisher}}</dd>
<dt>Language</dt><dd>{{.Language}}</dd><dt>ISBN-10</dt><dd>{{.ISBN10}}</dd><dt>ISBN-13</dt><dd>{{.ISBN13}}</dd>
</dl>{{else}}<p class="error" id="details-error">{{detailsUnavailable}}</p>
<p class="reason">{{.DetailsError}}</p>{{end}}
<h2>Book Reviews</h2>
{{with .Reviews}}<p>Reviews served by <b id="reviews-version">{{.Version}}</b> (pod <span id="reviews-pod">{{.PodName}}</span>)</p>
{{range .Reviews}}<blockquote><p>{{.Text}}</p><footer>{{.Reviewer}}{{with .Rating}} <span class="stars" data-color="{{.Color}}" style="color: {{.Color}}">{{stars .Stars}}</span>{{end}}</footer></blockquote>
{{end}}{{with .RatingsError}}<p class="ratings-error">ratings unavailable: {{.}}</p>
{{end}}{{else}}<p class="error" id="reviews-error">{{reviewsUnavailable}}</p>
<p class="reason">{{.ReviewsError}}</p>{{end}}
</body></html>
`))

// stars draws a 0..5 rating as five filled or empty stars.
func stars(n int) string {
	n = min(max(n, 0), 5)
	return strings.Repeat("★", n) + strings.Repeat("☆", 5-n)
}

// renderPage writes v as the HTML page, 200 even when parts are missing.
func renderPage(w http.ResponseWriter, v ProductView) {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, v); err != nil {
		http.Error(w, fmt.Sprintf("render page: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes()) // recorded by logRequests
}
