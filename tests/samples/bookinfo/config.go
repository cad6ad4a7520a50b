package main

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Apps are the subcommands of the bookinfo binary, one per Deployment.
var Apps = []string{"productpage", "details", "reviews", "ratings"}

// Config is one app's settings, read from the environment so the same image
// serves every Deployment of the sample.
type Config struct {
	// App is productpage, details, reviews or ratings.
	App string
	// PodName (POD_NAME, else HOSTNAME) names the pod in answers and logs.
	PodName     string
	Reviews     ReviewsConfig
	ProductPage ProductPageConfig
}

// Defaults: Kubernetes Service names on Istio's port, and Istio's timeouts.
const (
	defaultDetailsURL     = "http://details:9080"
	defaultReviewsURL     = "http://reviews:9080"
	defaultRatingsURL     = "http://ratings:9080"
	defaultCallTimeout    = 3 * time.Second
	defaultRatingsTimeout = 10 * time.Second
)

// loadConfig reads app's settings through getenv (os.Getenv in main).
func loadConfig(app string, getenv func(string) string) (Config, error) {
	cfg := Config{App: app, PodName: or(getenv("POD_NAME"), getenv("HOSTNAME"))}
	client := newClient()
	var err error
	switch app {
	case "details", "ratings":
	case "reviews":
		cfg.Reviews = ReviewsConfig{
			Version:    or(getenv("VERSION"), "v1"),
			PodName:    cfg.PodName,
			RatingsURL: or(getenv("RATINGS_URL"), defaultRatingsURL),
			Client:     client,
		}
		if _, ok := starColors[cfg.Reviews.Version]; !ok {
			return Config{}, fmt.Errorf("VERSION %q: want v1, v2 or v3", cfg.Reviews.Version)
		}
		if cfg.Reviews.RatingsTimeout, err = envDuration(getenv, "RATINGS_TIMEOUT", defaultRatingsTimeout); err != nil {
			return Config{}, err
		}
	case "productpage":
		cfg.ProductPage = ProductPageConfig{
			DetailsURL: or(getenv("DETAILS_URL"), defaultDetailsURL),
			ReviewsURL: or(getenv("REVIEWS_URL"), defaultReviewsURL),
			Client:     client,
		}
		if cfg.ProductPage.DetailsTimeout, err = envDuration(getenv, "DETAILS_TIMEOUT", defaultCallTimeout); err != nil {
			return Config{}, err
		}
		if cfg.ProductPage.ReviewsTimeout, err = envDuration(getenv, "REVIEWS_TIMEOUT", defaultCallTimeout); err != nil {
			return Config{}, err
		}
	default:
		return Config{}, fmt.Errorf("unknown app %q: want one of %v", app, Apps)
	}
	return cfg, nil
}

// newHandler builds the configured app's handler.
func newHandler(cfg Config) (http.Handler, error) {
	switch cfg.App {
	case "productpage":
		return NewProductPage(cfg.ProductPage), nil
	case "details":
		return NewDetails(), nil
	case "reviews":
		return NewReviews(cfg.Reviews)
	case "ratings":
		return NewRatings(), nil
	}
	return nil, fmt.Errorf("unknown app %q: want one of %v", cfg.App, Apps)
}

// envDuration reads a positive duration such as "3s" or "500ms"; a bare
// number is seconds ("2.5").
func envDuration(getenv func(string) string, key string, def time.Duration) (time.Duration, error) {
	s := getenv(key)
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		secs, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return 0, fmt.Errorf("%s %q: want a duration like 3s or 500ms: %w", key, s, err)
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d <= 0 {
		return 0, fmt.Errorf("%s %q: must be positive", key, s)
	}
	return d, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
