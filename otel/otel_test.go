package otel_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh/events"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"golang.org/x/oauth2"
)

// collect returns the points the reader holds, as "instrument{attr=value,...}" -> value; a
// histogram point as its count and, for instruments in seconds, nothing of its sum.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	name := func(m string, set attribute.Set) string {
		var kv []string
		for _, a := range set.ToSlice() {
			kv = append(kv, string(a.Key)+"="+a.Value.String())
		}
		sort.Strings(kv)
		return m + "{" + strings.Join(kv, ",") + "}"
	}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != otel.ScopeName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, otel.ScopeName)
		}
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					got[name(m.Name, p.Attributes)] = float64(p.Value)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					got[name(m.Name, p.Attributes)+" count"] = float64(p.Count)
				}
			default:
				t.Errorf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return got
}

func newMeter(t *testing.T) (func(events.Event), *sdkmetric.ManualReader) {
	t.Helper()
	r := sdkmetric.NewManualReader()
	metrics, err := otel.Events(otel.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))))
	if err != nil {
		t.Fatal(err)
	}
	return metrics, r
}

func TestEventsEveryKind(t *testing.T) {
	metrics, r := newMeter(t)
	for _, ev := range []events.Event{
		{Kind: events.RefreshStarted, Trigger: events.TriggerFirst},
		{Kind: events.RefreshFinished, Trigger: events.TriggerFirst, Outcome: events.OutcomeOK, Duration: time.Second, Waiters: 3},
		{Kind: events.RefreshFinished, Trigger: events.TriggerExpired, Outcome: events.OutcomeTemporary, Status: 503, Waiters: 2, Failures: 1},
		{Kind: events.BackoffStarted, Outcome: events.OutcomeTemporary, Failures: 1},
		{Kind: events.BackoffEnded, Failures: 1},
		{Kind: events.PersistFailed, Outcome: events.OutcomeHook, Attempt: 1},
		{Kind: events.StorePickup, Key: "user-1"},
		{Kind: events.LeaseTaken, Key: "user-1", Duration: time.Millisecond},
		{Kind: events.LeaseLost, Key: "user-1"},
		{Kind: events.UnauthorizedRetry, Status: 401},
		{Kind: events.TokenDropped, Trigger: events.TriggerRejected},
		{Kind: events.DropIgnored},
		{Kind: events.Waited, Duration: time.Second},
		{Kind: events.AuthSwitched, Method: oauth2refresh.AuthRequestBody.String()},
		{Kind: events.NonceRetry, Status: 401},
	} {
		metrics(ev)
	}
	want := map[string]float64{
		"oauth2refresh.refreshes{outcome=ok,trigger=first}":                       1,
		"oauth2refresh.refreshes{outcome=temporary,trigger=expired}":              1,
		"oauth2refresh.refresh.duration{outcome=ok,trigger=first} count":          1,
		"oauth2refresh.refresh.duration{outcome=temporary,trigger=expired} count": 1,
		"oauth2refresh.refresh.waiters{outcome=ok}":                               3,
		"oauth2refresh.refresh.waiters{outcome=temporary}":                        2,
		"oauth2refresh.backoffs{outcome=temporary}":                               1,
		"oauth2refresh.persist.failures{outcome=hook}":                            1,
		"oauth2refresh.store.pickups{}":                                           1,
		"oauth2refresh.store.lease.duration{} count":                              1,
		"oauth2refresh.store.leases_lost{}":                                       1,
		"oauth2refresh.unauthorized_retries{}":                                    1,
		"oauth2refresh.tokens_dropped{trigger=rejected}":                          1,
		"oauth2refresh.drops_ignored{}":                                           1,
		"oauth2refresh.auth_switches{}":                                           1,
		"oauth2refresh.dpop.nonce_retries{}":                                      1,
		"oauth2refresh.wait.duration{} count":                                     1,
	}
	if diff := cmp.Diff(want, collect(t, r)); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}

func TestEventsOfConcurrentCallers(t *testing.T) {
	// 16 goroutines ask an expired source for a token at once: one refresh, counted once,
	// with every caller that waited for it; then the grant is refused.
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if requests.Add(1) > 1 {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_grant"}`)
			return
		}
		time.Sleep(10 * time.Millisecond) // let callers pile up (the counts do not depend on it)
		io.WriteString(w, `{"access_token":"at-1","token_type":"Bearer","refresh_token":"rt-1","expires_in":3600}`)
	}))
	defer srv.Close()
	metrics, r := newMeter(t)
	ep := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: "app", ClientSecret: "s3cret"}
	src := ep.TokenSource(context.Background(), &oauth2.Token{RefreshToken: "rt-0"}, oauth2refresh.WithEvents(metrics))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := src.Token(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	src.Invalidate(nil)
	src.Token()
	got := collect(t, r)
	w := got["oauth2refresh.refresh.waiters{outcome=ok}"]
	if w < 1 || w > 16 {
		t.Errorf("waiters = %v, want 1 to 16", w)
	}
	delete(got, "oauth2refresh.refresh.waiters{outcome=ok}")
	if n := got["oauth2refresh.wait.duration{} count"]; n != w+1 {
		t.Errorf("waits recorded = %v, want one per waiter of both flights, %v", n, w+1)
	}
	delete(got, "oauth2refresh.wait.duration{} count")
	want := map[string]float64{
		"oauth2refresh.refreshes{outcome=ok,trigger=first}":                               1,
		"oauth2refresh.refreshes{outcome=invalid_grant,trigger=invalidated}":              1,
		"oauth2refresh.refresh.duration{outcome=ok,trigger=first} count":                  1,
		"oauth2refresh.refresh.duration{outcome=invalid_grant,trigger=invalidated} count": 1,
		"oauth2refresh.refresh.waiters{outcome=invalid_grant}":                            1,
		"oauth2refresh.backoffs{outcome=invalid_grant}":                                   1,
		"oauth2refresh.tokens_dropped{trigger=invalidated}":                               1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("token requests = %d, want 2", n)
	}
}
