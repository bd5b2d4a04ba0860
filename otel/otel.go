// Package otel traces the refreshes of oauth2refresh TokenSources and records metrics of what
// they do, with OpenTelemetry. It is a module of its own, so that the core module stays free of
// OpenTelemetry.
//
//	metrics, err := otel.Events(otel.WithMeterProvider(mp))
//	if err != nil { ... }
//	ts := ep.TokenSource(ctx, tok,
//		oauth2refresh.WithEvents(metrics),
//		oauth2refresh.WithTracer(otel.Spans(otel.WithTracerProvider(tp))))
//
// Spans: see Spans. Metrics: see Events.
// The instruments of Events, all counters unless said otherwise, with their attributes:
//
//	oauth2refresh.refreshes             flights (refreshes or store pickups); trigger, outcome
//	oauth2refresh.refresh.duration      histogram, s: the flights' durations; trigger, outcome
//	oauth2refresh.refresh.waiters       callers that waited for a flight; outcome
//	oauth2refresh.wait.duration         histogram, s: how long each of them waited
//	oauth2refresh.backoffs              backoffs started after failed flights; outcome
//	oauth2refresh.persist.failures      failed saves to the Store and OnNewToken calls; outcome
//	oauth2refresh.store.pickups         tokens taken from the Store instead of refreshing
//	oauth2refresh.store.lease.duration  histogram, s: waits for the Store's lease
//	oauth2refresh.store.leases_lost     saves that found their lease lost
//	oauth2refresh.unauthorized_retries  requests a Transport retried after a 401
//	oauth2refresh.tokens_dropped        tokens dropped by Invalidate; trigger
//	oauth2refresh.drops_ignored         rejected tokens kept by Invalidate's bound
//
// The grant's key (WithStore) is not an attribute: there may be one per user.
package otel

import (
	"context"

	"github.com/tokenkit/oauth2refresh/events"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the meter and the tracer.
const ScopeName = "github.com/tokenkit/oauth2refresh/otel"

// Option configures Events and Spans.
type Option func(*config)

type config struct {
	mp metric.MeterProvider
	tp trace.TracerProvider
}

// WithTracerProvider sets the TracerProvider of Spans. The default, or nil, is the global one
// (otel.GetTracerProvider).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// Spans returns an events.Tracer for oauth2refresh.WithTracer that traces each flight of a
// TokenSource (a refresh, a pickup from the Store) as a client span "oauth2refresh.refresh".
// Its parent is the span of the call that started the flight (whose context values the flight
// has, see oauth2refresh.TokenSource.TokenContext), and the token request, Store calls and
// OnNewToken run inside it: an otelhttp-instrumented Endpoint.HTTPClient nests its span under
// it. Attributes: oauth2refresh.trigger, then oauth2refresh.outcome, oauth2refresh.waiters
// (the callers that waited for it) and, for a failure with an HTTP answer,
// http.response.status_code. A failed flight has status Error, with the flight's error, which
// holds no token. A call that waits for a flight another call started gets an event
// "oauth2refresh.wait" on its own span instead.
func Spans(opts ...Option) events.Tracer {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	return spans{c.tp.Tracer(ScopeName)}
}

type spans struct{ tracer trace.Tracer }

func (s spans) Start(ctx context.Context, t events.Trigger) (context.Context, func(events.Event)) {
	ctx, span := s.tracer.Start(ctx, "oauth2refresh.refresh", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("oauth2refresh.trigger", t.String())))
	return ctx, func(ev events.Event) {
		span.SetAttributes(attribute.String("oauth2refresh.outcome", ev.Outcome.String()),
			attribute.Int("oauth2refresh.waiters", ev.Waiters))
		if ev.Status != 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", ev.Status))
		}
		if ev.Err != nil {
			span.SetStatus(codes.Error, ev.Err.Error())
		}
		span.End()
	}
}

func (s spans) Wait(ctx context.Context) {
	trace.SpanFromContext(ctx).AddEvent("oauth2refresh.wait")
}

// WithMeterProvider sets the MeterProvider the instruments are made with. The default, or
// nil, is the global one (otel.GetMeterProvider).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.mp = mp }
}

// Events returns a function for oauth2refresh.WithEvents that records the events as metrics
// (see the package documentation). One function may serve any number of TokenSources. It
// fails only when an instrument cannot be created.
func Events(opts ...Option) (func(events.Event), error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	m := c.mp.Meter(ScopeName)
	var (
		ins  = map[events.Kind]metric.Int64Counter{}
		errs []error
	)
	counter := func(k events.Kind, name, desc string) {
		c, err := m.Int64Counter(name, metric.WithDescription(desc))
		ins[k], errs = c, append(errs, err)
	}
	counter(events.RefreshFinished, "oauth2refresh.refreshes", "Flights of oauth2refresh TokenSources: refreshes or store pickups.")
	counter(events.BackoffStarted, "oauth2refresh.backoffs", "Backoffs started after failed flights.")
	counter(events.PersistFailed, "oauth2refresh.persist.failures", "Failed saves to the Store and OnNewToken calls.")
	counter(events.StorePickup, "oauth2refresh.store.pickups", "Tokens taken from the Store instead of refreshing.")
	counter(events.LeaseLost, "oauth2refresh.store.leases_lost", "Saves that found their Store lease lost.")
	counter(events.UnauthorizedRetry, "oauth2refresh.unauthorized_retries", "Requests a Transport retried after a 401.")
	counter(events.TokenDropped, "oauth2refresh.tokens_dropped", "Tokens dropped by Invalidate.")
	counter(events.DropIgnored, "oauth2refresh.drops_ignored", "Rejected tokens kept by Invalidate's bound.")
	counter(events.AuthSwitched, "oauth2refresh.auth_switches", "Switches of AuthAutoDetect to the other client authentication.")
	counter(events.NonceRetry, "oauth2refresh.dpop.nonce_retries", "Requests sent again after a DPoP nonce challenge.")
	waiters, err := m.Int64Counter("oauth2refresh.refresh.waiters", metric.WithDescription("Callers that waited for a flight."))
	errs = append(errs, err)
	duration, err := m.Float64Histogram("oauth2refresh.refresh.duration", metric.WithUnit("s"),
		metric.WithDescription("Durations of the flights of oauth2refresh TokenSources."))
	errs = append(errs, err)
	lease, err := m.Float64Histogram("oauth2refresh.store.lease.duration", metric.WithUnit("s"),
		metric.WithDescription("Waits for the lease of a Store."))
	errs = append(errs, err)
	wait, err := m.Float64Histogram("oauth2refresh.wait.duration", metric.WithUnit("s"),
		metric.WithDescription("Time callers spent waiting for a flight."))
	errs = append(errs, err)
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return func(ev events.Event) {
		ctx := context.Background()
		var attrs []attribute.KeyValue
		if ev.Kind == events.RefreshFinished || ev.Kind == events.TokenDropped {
			attrs = append(attrs, attribute.String("trigger", ev.Trigger.String()))
		}
		if ev.Outcome != 0 {
			attrs = append(attrs, attribute.String("outcome", ev.Outcome.String()))
		}
		set := metric.WithAttributes(attrs...)
		if c := ins[ev.Kind]; c != nil {
			c.Add(ctx, 1, set)
		}
		switch ev.Kind {
		case events.RefreshFinished:
			duration.Record(ctx, ev.Duration.Seconds(), set)
			waiters.Add(ctx, int64(ev.Waiters), metric.WithAttributes(attribute.String("outcome", ev.Outcome.String())))
		case events.LeaseTaken:
			lease.Record(ctx, ev.Duration.Seconds())
		case events.Waited:
			wait.Record(ctx, ev.Duration.Seconds())
		}
	}, nil
}
