package otel_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"golang.org/x/oauth2"
)

// Trace refreshes: the span of the refresh is a child of the span of the request handler
// whose call started it.
func ExampleSpans() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"at-1","token_type":"Bearer","refresh_token":"rt-1","expires_in":3600}`)
	}))
	defer srv.Close()
	rec := tracetest.NewSpanRecorder() // in production, a batch span processor and an exporter
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ep := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: "app", ClientSecret: "s3cret"}
	ts := ep.TokenSource(context.Background(), &oauth2.Token{RefreshToken: "rt-0"},
		oauth2refresh.WithTracer(otel.Spans(otel.WithTracerProvider(tp))))

	ctx, handler := tp.Tracer("app").Start(context.Background(), "GET /profile")
	ts.TokenContext(ctx)
	handler.End()

	for _, s := range rec.Ended() {
		parent := "none"
		if s.Parent().SpanID() == handler.SpanContext().SpanID() {
			parent = "GET /profile"
		}
		fmt.Printf("%s (parent is %s)\n", s.Name(), parent)
	}
	// Output:
	// oauth2refresh.refresh (parent is GET /profile)
	// GET /profile (parent is none)
}

// Count the refreshes of a TokenSource by outcome with OpenTelemetry metrics.
func ExampleEvents() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"at-1","token_type":"Bearer","refresh_token":"rt-1","expires_in":3600}`)
	}))
	defer srv.Close()
	reader := sdkmetric.NewManualReader() // in production, a periodic reader and an exporter
	metrics, err := otel.Events(otel.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	if err != nil {
		panic(err)
	}
	ep := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: "app", ClientSecret: "s3cret"}
	ts := ep.TokenSource(context.Background(), &oauth2.Token{RefreshToken: "rt-0"}, oauth2refresh.WithEvents(metrics))
	ts.Token()

	var rm metricdata.ResourceMetrics
	reader.Collect(context.Background(), &rm)
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "oauth2refresh.refreshes" {
			for _, p := range sum.DataPoints {
				outcome, _ := p.Attributes.Value("outcome")
				trigger, _ := p.Attributes.Value("trigger")
				fmt.Printf("%s{outcome=%s,trigger=%s} %d\n", m.Name, outcome.AsString(), trigger.AsString(), p.Value)
			}
		}
	}
	// Output:
	// oauth2refresh.refreshes{outcome=ok,trigger=first} 1
}
