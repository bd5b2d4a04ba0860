package otel_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/otel"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"
)

// span is what a test checks of a recorded span.
type span struct {
	Name   string
	Parent string // the name of the parent span, "" for a root
	Attrs  map[string]string
	Status codes.Code
	Events []string
}

// spans returns the ended spans of rec, parents named.
func spans(rec *tracetest.SpanRecorder) []span {
	ended := rec.Ended()
	names := map[trace.SpanID]string{}
	for _, s := range ended {
		names[s.SpanContext().SpanID()] = s.Name()
	}
	var out []span
	for _, s := range ended {
		sp := span{Name: s.Name(), Attrs: map[string]string{}, Status: s.Status().Code}
		if s.Parent().IsValid() {
			sp.Parent = names[s.Parent().SpanID()]
			if sp.Parent == "" {
				sp.Parent = "?"
			}
		}
		for _, a := range s.Attributes() {
			sp.Attrs[string(a.Key)] = a.Value.String()
		}
		for _, e := range s.Events() {
			sp.Events = append(sp.Events, e.Name)
		}
		out = append(out, sp)
	}
	return out
}

// tokenEndpoint answers the first n token requests with a token, the others with
// invalid_grant (HTTP 400).
func tokenEndpoint(t *testing.T, n int64) *httptest.Server {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if requests.Add(1) > n {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_grant"}`)
			return
		}
		io.WriteString(w, `{"access_token":"at-1","token_type":"Bearer","refresh_token":"rt-1","expires_in":3600}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// tracedClient is an http.Client whose transport opens a span "POST" from each request's
// context, as otelhttp's does.
func tracedClient(tp trace.TracerProvider) *http.Client {
	tr := tp.Tracer("test-http")
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		_, s := tr.Start(r.Context(), "POST")
		defer s.End()
		return http.DefaultTransport.RoundTrip(r)
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// tracedSource returns a traced TokenSource holding refresh token rt-0 of tokenEndpoint(t, 1)
// through tracedClient, a tracer for the test's own spans, and the recorder of all spans.
func tracedSource(t *testing.T) (*oauth2refresh.TokenSource, trace.Tracer, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ep := &oauth2refresh.Endpoint{TokenURL: tokenEndpoint(t, 1).URL, ClientID: "app", ClientSecret: "s3cret", HTTPClient: tracedClient(tp)}
	src := ep.TokenSource(context.Background(), &oauth2.Token{RefreshToken: "rt-0"},
		oauth2refresh.WithTracer(otel.Spans(otel.WithTracerProvider(tp))))
	return src, tp.Tracer("app"), rec
}

func TestSpans(t *testing.T) {
	// A refresh started by a traced call: its span is the call's child, and the token
	// request's span is the refresh span's child. Then a refused grant: status Error.
	src, app, rec := tracedSource(t)
	for _, name := range []string{"handler 1", "handler 2"} {
		ctx, s := app.Start(context.Background(), name)
		src.TokenContext(ctx)
		s.End()
		src.Invalidate(nil)
	}
	want := []span{
		{Name: "POST", Parent: "oauth2refresh.refresh", Attrs: map[string]string{}},
		{Name: "oauth2refresh.refresh", Parent: "handler 1", Attrs: map[string]string{
			"oauth2refresh.trigger": "first", "oauth2refresh.outcome": "ok", "oauth2refresh.waiters": "1"}},
		{Name: "handler 1", Attrs: map[string]string{}},
		{Name: "POST", Parent: "oauth2refresh.refresh", Attrs: map[string]string{}},
		{Name: "oauth2refresh.refresh", Parent: "handler 2", Status: codes.Error, Attrs: map[string]string{
			"oauth2refresh.trigger": "invalidated", "oauth2refresh.outcome": "invalid_grant", "oauth2refresh.waiters": "1",
			"http.response.status_code": "400"}},
		{Name: "handler 2", Attrs: map[string]string{}},
	}
	if diff := cmp.Diff(want, spans(rec)); diff != "" {
		t.Errorf("spans (-want +got):\n%s", diff)
	}
}

func TestSpansConcurrentCallers(t *testing.T) {
	// 16 traced callers at once: one refresh span, a child of one of theirs, one token request;
	// the callers that waited for it and did not start it have an event on their spans.
	src, app, rec := tracedSource(t)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			ctx, s := app.Start(context.Background(), "handler")
			defer s.End()
			if _, err := src.TokenContext(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	count := map[string]int{}
	waiters, waitEvents := 0, 0
	for _, s := range spans(rec) {
		count[s.Name+" < "+s.Parent]++
		if s.Name == "oauth2refresh.refresh" {
			waiters, _ = strconv.Atoi(s.Attrs["oauth2refresh.waiters"])
		}
		for _, e := range s.Events {
			if s.Name != "handler" || e != "oauth2refresh.wait" {
				t.Errorf("span %s has event %s", s.Name, e)
			}
			waitEvents++
		}
	}
	t.Logf("%d callers waited for the refresh", waiters)
	if waiters < 1 || waiters > 16 || waitEvents != waiters-1 {
		t.Errorf("waiters = %d, wait events = %d; want 1 to 16 waiters, one of them the caller that ran the refresh", waiters, waitEvents)
	}
	want := map[string]int{"handler < ": 16, "oauth2refresh.refresh < handler": 1, "POST < oauth2refresh.refresh": 1}
	if diff := cmp.Diff(want, count); diff != "" {
		t.Errorf("spans by name < parent (-want +got):\n%s", diff)
	}
}
