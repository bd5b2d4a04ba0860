package oauth2refresh_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh/events"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenkit/oauth2refresh"
)

// logLines decodes the JSON lines of a slog.JSONHandler, without their time.
func logLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		delete(m, "time")
		out = append(out, m)
	}
	return out
}

func TestLogEvents(t *testing.T) {
	until := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	finished := func(o events.Outcome) event {
		return event{Kind: events.RefreshFinished, Trigger: events.TriggerExpired, Outcome: o, Failures: 1, Err: errors.New("it failed")}
	}
	failed := func(level, outcome string) map[string]any {
		return map[string]any{"level": level, "msg": "oauth2refresh: refresh failed", "trigger": "expired", "outcome": outcome, "failures": 1.0, "err": "it failed"}
	}
	tests := []struct {
		name string
		ev   event
		want []map[string]any // nil: no line
	}{
		{"started", event{Kind: events.RefreshStarted, Trigger: events.TriggerFirst},
			[]map[string]any{{"level": "DEBUG", "msg": "oauth2refresh: refresh started", "trigger": "first"}}},
		{"finished", event{Kind: events.RefreshFinished, Key: "user-1", Trigger: events.TriggerEarly, Outcome: events.OutcomeOK, Duration: 2 * time.Second, Waiters: 3},
			[]map[string]any{{"level": "DEBUG", "msg": "oauth2refresh: refresh finished", "key": "user-1", "trigger": "early", "outcome": "ok", "duration": 2e9, "waiters": 3.0}}},
		{"picked up", event{Kind: events.RefreshFinished, Key: "user-1", Trigger: events.TriggerFirst, Outcome: events.OutcomePickedUp, Waiters: 1},
			[]map[string]any{{"level": "DEBUG", "msg": "oauth2refresh: refresh finished", "key": "user-1", "trigger": "first", "outcome": "picked_up", "waiters": 1.0}}},
		{"refused grant", event{Kind: events.RefreshFinished, Trigger: events.TriggerExpired, Outcome: events.OutcomeInvalidGrant, Status: 400, Failures: 1, Err: errors.New("it failed")},
			[]map[string]any{{"level": "ERROR", "msg": "oauth2refresh: refresh failed", "trigger": "expired", "outcome": "invalid_grant", "status": 400.0, "failures": 1.0, "err": "it failed"}}},
		{"refused client", finished(events.OutcomeInvalidClient), []map[string]any{failed("ERROR", "invalid_client")}},
		{"temporary", finished(events.OutcomeTemporary), []map[string]any{failed("WARN", "temporary")}},
		{"transport", finished(events.OutcomeTransport), []map[string]any{failed("WARN", "transport")}},
		{"store", finished(events.OutcomeStore), []map[string]any{failed("WARN", "store")}},
		{"hook", finished(events.OutcomeHook), []map[string]any{failed("ERROR", "hook")}},
		{"panic", finished(events.OutcomePanic), []map[string]any{failed("ERROR", "panic")}},
		{"other", finished(events.OutcomeOther), []map[string]any{failed("ERROR", "other")}},
		{"backoff", event{Kind: events.BackoffStarted, Outcome: events.OutcomeTemporary, Status: 503, Failures: 2, Until: until},
			[]map[string]any{{"level": "WARN", "msg": "oauth2refresh: backing off", "outcome": "temporary", "status": 503.0, "failures": 2.0, "until": "2030-01-02T03:04:05Z"}}},
		{"recovered", event{Kind: events.BackoffEnded, Failures: 2},
			[]map[string]any{{"level": "INFO", "msg": "oauth2refresh: refresh recovered", "failures": 2.0}}},
		{"persist failed", event{Kind: events.PersistFailed, Key: "k", Outcome: events.OutcomeHook, Attempt: 1, Err: errors.New("db down")},
			[]map[string]any{{"level": "WARN", "msg": "oauth2refresh: persisting token failed", "key": "k", "outcome": "hook", "attempt": 1.0, "err": "db down"}}},
		{"pickup", event{Kind: events.StorePickup, Key: "k"},
			[]map[string]any{{"level": "DEBUG", "msg": "oauth2refresh: token picked up from store", "key": "k"}}},
		{"lease taken", event{Kind: events.LeaseTaken, Key: "k", Duration: time.Millisecond},
			[]map[string]any{{"level": "DEBUG", "msg": "oauth2refresh: store lease taken", "key": "k", "duration": 1e6}}},
		{"lease lost", event{Kind: events.LeaseLost, Key: "k", Err: errors.New("lost")},
			[]map[string]any{{"level": "WARN", "msg": "oauth2refresh: store lease lost", "key": "k", "err": "lost"}}},
		{"401 retried", event{Kind: events.UnauthorizedRetry, Status: 401},
			[]map[string]any{{"level": "INFO", "msg": "oauth2refresh: request retried after 401", "status": 401.0}}},
		{"dropped", event{Kind: events.TokenDropped, Trigger: events.TriggerRejected},
			[]map[string]any{{"level": "INFO", "msg": "oauth2refresh: token dropped", "trigger": "rejected"}}},
		{"drop ignored", event{Kind: events.DropIgnored, Until: until},
			[]map[string]any{{"level": "WARN", "msg": "oauth2refresh: token rejection ignored", "until": "2030-01-02T03:04:05Z"}}},
		{"auth switched", event{Kind: events.AuthSwitched, Method: oauth2refresh.AuthRequestBody.String()},
			[]map[string]any{{"level": "INFO", "msg": "oauth2refresh: client authentication switched", "method": "client_secret_post"}}},
		{"grant dead", event{Kind: events.GrantDead, Key: "k", Outcome: events.OutcomeInvalidGrant, Status: 400, Err: errors.New("dead")},
			[]map[string]any{{"level": "ERROR", "msg": "oauth2refresh: grant is dead: it must be authorized again", "key": "k", "outcome": "invalid_grant", "status": 400.0, "err": "dead"}}},
		{"long key", event{Kind: events.StorePickup, Key: strings.Repeat("k", 1<<20)},
			// A key is logged up to 256 bytes, then a marker.
			[]map[string]any{{"level": "DEBUG", "msg": "oauth2refresh: token picked up from store", "key": strings.Repeat("k", 256) + "…"}}},
		{"waited", event{Kind: events.Waited, Duration: time.Second}, nil},
		{"zero kind", event{}, nil},
		{"unknown kind", event{Kind: 200}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			events.Log(slog.New(slog.NewJSONHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})))(tc.ev)
			if diff := cmp.Diff(tc.want, logLines(t, b.Bytes())); diff != "" {
				t.Errorf("log lines (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLogEventsLevel(t *testing.T) {
	// A logger at Info leaves routine refreshes out.
	var b bytes.Buffer
	log := events.Log(slog.New(slog.NewJSONHandler(&b, nil)))
	log(event{Kind: events.RefreshStarted, Trigger: events.TriggerExpired})
	log(event{Kind: events.RefreshFinished, Trigger: events.TriggerExpired, Outcome: events.OutcomeOK})
	log(event{Kind: events.BackoffEnded, Failures: 1})
	want := []map[string]any{{"level": "INFO", "msg": "oauth2refresh: refresh recovered", "failures": 1.0}}
	if diff := cmp.Diff(want, logLines(t, b.Bytes())); diff != "" {
		t.Errorf("log lines (-want +got):\n%s", diff)
	}
}

func TestLogEventsOfASource(t *testing.T) {
	// A refused grant, through a TokenSource: the lines an operator sees.
	var b bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clock := newFakeClock()
	rs := newTokenServer(t, "rt-0", 3600)
	src := rs.endpoint().TokenSource(context.Background(), expiredToken(clock, "rt-spent"),
		oauth2refresh.WithClock(clock.now), oauth2refresh.WithEvents(events.Log(logger)))
	if _, err := src.Token(); !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
		t.Fatalf("Token error = %v, want ErrInvalidGrant", err)
	}
	lines := logLines(t, b.Bytes())
	if len(lines) == 3 {
		delete(lines[2], "until") // random
	}
	want := []map[string]any{
		{"level": "DEBUG", "msg": "oauth2refresh: refresh started", "trigger": "expired"},
		{"level": "ERROR", "msg": "oauth2refresh: refresh failed", "trigger": "expired", "outcome": "invalid_grant", "status": 400.0,
			"waiters": 1.0, "failures": 1.0, "err": `oauth2refresh: token endpoint returned "invalid_grant" (HTTP 400): refresh token invalid or reused`},
		{"level": "WARN", "msg": "oauth2refresh: backing off", "outcome": "invalid_grant", "status": 400.0, "failures": 1.0},
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("log lines (-want +got):\n%s", diff)
	}
}
