package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Request is what to send and how often.
type Request struct {
	Method, URL, Body string
	Headers           []string
	Count             int
	Concurrency       int
	Timeout           time.Duration
	Verbose, Fail     bool
	Insecure          bool
	// Summary prints the JSON summary of Load even for one request.
	Summary bool
}

// client is the HTTP client for r: -k skips certificate checks (for
// reachability probes of self-signed endpoints such as a kubelet).
func (r Request) client() *http.Client {
	if !r.Insecure {
		return http.DefaultClient
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked for -k
	return &http.Client{Transport: t}
}

func (r Request) build(ctx context.Context) (*http.Request, error) {
	hr, err := http.NewRequestWithContext(ctx, r.Method, r.URL, strings.NewReader(r.Body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	for _, h := range r.Headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return nil, fmt.Errorf("header %q: want 'Name: value'", h)
		}
		if strings.EqualFold(strings.TrimSpace(k), "host") {
			hr.Host = strings.TrimSpace(v)
			continue
		}
		hr.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return hr, nil
}

// Do sends one request, copies the body to out and returns the status code.
func Do(ctx context.Context, r Request, out, verbose io.Writer) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	hr, err := r.build(ctx)
	if err != nil {
		return 0, err
	}
	resp, err := r.client().Do(hr)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if r.Verbose {
		fmt.Fprintf(verbose, "< %s %s\n", resp.Proto, resp.Status)
		keys := make([]string, 0, len(resp.Header))
		for k := range resp.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(verbose, "< %s: %s\n", k, strings.Join(resp.Header[k], ", "))
		}
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		return resp.StatusCode, fmt.Errorf("read body: %w", err)
	}
	return resp.StatusCode, nil
}

// Summary counts the outcomes of many requests: status codes (or "error"),
// the pods that served them (X-Served-By), and latency percentiles.
type Summary struct {
	Requests int            `json:"requests"`
	Codes    map[string]int `json:"codes"`
	ServedBy map[string]int `json:"servedBy"`
	Errors   []string       `json:"errors,omitempty"`
	P50ms    float64        `json:"p50ms"`
	P99ms    float64        `json:"p99ms"`
}

// Load sends r.Count requests with r.Concurrency workers and summarises them.
func Load(ctx context.Context, r Request) Summary {
	sum := Summary{Requests: r.Count, Codes: map[string]int{}, ServedBy: map[string]int{}}
	var mu sync.Mutex
	var lat []time.Duration
	jobs := make(chan struct{})
	var wg sync.WaitGroup
	for range max(1, r.Concurrency) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				start := time.Now()
				code, by, err := once(ctx, r)
				mu.Lock()
				lat = append(lat, time.Since(start))
				if err != nil {
					sum.Codes["error"]++
					if len(sum.Errors) < 5 {
						sum.Errors = append(sum.Errors, err.Error())
					}
				} else {
					sum.Codes[strconv.Itoa(code)]++
					if by != "" {
						sum.ServedBy[by]++
					}
				}
				mu.Unlock()
			}
		}()
	}
	for range r.Count {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	sum.P50ms = ms(lat[len(lat)/2])
	sum.P99ms = ms(lat[(len(lat)*99)/100])
	return sum
}

func once(ctx context.Context, r Request) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	hr, err := r.build(ctx)
	if err != nil {
		return 0, "", err
	}
	resp, err := r.client().Do(hr)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, "", fmt.Errorf("read body: %w", err)
	}
	return resp.StatusCode, resp.Header.Get("X-Served-By"), nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Write prints the summary as one JSON document.
func (s Summary) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}
