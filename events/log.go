package events

// log.go logs events with log/slog: one line per event, at the level an operator would choose.

import (
	"context"
	"log/slog"

	"github.com/tokenkit/oauth2refresh/internal/quote"
)

// logLines are the level and message of each Kind.
var logLines = [...]struct {
	level slog.Level
	msg   string
}{
	RefreshStarted:    {slog.LevelDebug, "oauth2refresh: refresh started"},
	RefreshFinished:   {slog.LevelDebug, "oauth2refresh: refresh finished"},
	BackoffStarted:    {slog.LevelWarn, "oauth2refresh: backing off"},
	BackoffEnded:      {slog.LevelInfo, "oauth2refresh: refresh recovered"},
	PersistFailed:     {slog.LevelWarn, "oauth2refresh: persisting token failed"},
	StorePickup:       {slog.LevelDebug, "oauth2refresh: token picked up from store"},
	LeaseTaken:        {slog.LevelDebug, "oauth2refresh: store lease taken"},
	LeaseLost:         {slog.LevelWarn, "oauth2refresh: store lease lost"},
	UnauthorizedRetry: {slog.LevelInfo, "oauth2refresh: request retried after 401"},
	TokenDropped:      {slog.LevelInfo, "oauth2refresh: token dropped"},
	DropIgnored:       {slog.LevelWarn, "oauth2refresh: token rejection ignored"},
	AuthSwitched:      {slog.LevelInfo, "oauth2refresh: client authentication switched"},
	NonceRetry:        {slog.LevelDebug, "oauth2refresh: request sent again with a new DPoP nonce"},
	GrantDead:         {slog.LevelError, "oauth2refresh: grant is dead: it must be authorized again"},
}

// maxLoggedKey is the length of the longest key Log logs whole.
const maxLoggedKey = 256

// Log returns a function for oauth2refresh.WithEvents that logs each Event to logger (nil means
// slog.Default()) as one line, with the Event's fields that are set as attributes: "key",
// "trigger", "outcome", "status", "duration", "waiters", "failures", "attempt", "until" and
// "err". Levels:
//
//   - Error: a refresh that failed for good: refused grant or client, OnNewToken failed or
//     panicked, any other failure but those below; a grant found dead.
//   - Warn: a refresh that failed for now (OutcomeTemporary, OutcomeTransport, OutcomeStore),
//     a backoff, a failed persist (retried), a lost lease, a rejected token kept by
//     Invalidate's bound.
//   - Info: recovery after failures, a 401 retried, a token dropped by Invalidate, the
//     method AuthAutoDetect switched to ("method").
//   - Debug: a refresh started or succeeded, a store pickup, a lease taken, a DPoP nonce
//     challenge answered.
//
// A key longer than 256 bytes is logged cut there, followed by "…".
// Waited, one per caller that waited, is not logged.
// No line holds token material (see Event).
func Log(logger *slog.Logger) func(Event) {
	if logger == nil {
		logger = slog.Default()
	}
	return func(ev Event) {
		if int(ev.Kind) >= len(logLines) || ev.Kind == 0 {
			return
		}
		line := logLines[ev.Kind]
		if line.msg == "" { // Waited
			return
		}
		if ev.Kind == RefreshFinished && ev.Outcome != OutcomeOK && ev.Outcome != OutcomePickedUp {
			line.level, line.msg = slog.LevelError, "oauth2refresh: refresh failed"
			switch ev.Outcome {
			case OutcomeTemporary, OutcomeTransport, OutcomeStore:
				line.level = slog.LevelWarn
			}
		}
		ctx := context.Background()
		if !logger.Enabled(ctx, line.level) {
			return
		}
		attrs := make([]slog.Attr, 0, 10)
		add := func(set bool, a slog.Attr) {
			if set {
				attrs = append(attrs, a)
			}
		}
		add(ev.Key != "", slog.String("key", quote.Truncate(ev.Key, maxLoggedKey)))
		add(ev.Trigger != 0, slog.String("trigger", ev.Trigger.String()))
		add(ev.Outcome != 0, slog.String("outcome", ev.Outcome.String()))
		add(ev.Status != 0, slog.Int("status", ev.Status))
		add(ev.Duration != 0, slog.Duration("duration", ev.Duration))
		add(ev.Waiters != 0, slog.Int("waiters", ev.Waiters))
		add(ev.Failures != 0, slog.Int("failures", ev.Failures))
		add(ev.Attempt != 0, slog.Int("attempt", ev.Attempt))
		add(!ev.Until.IsZero(), slog.Time("until", ev.Until))
		add(ev.Kind == AuthSwitched, slog.String("method", ev.Method))
		if ev.Err != nil {
			attrs = append(attrs, slog.String("err", ev.Err.Error()))
		}
		logger.LogAttrs(ctx, line.level, line.msg, attrs...)
	}
}
