package events

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStrings(t *testing.T) {
	var got []string
	for k := Kind(0); k <= 16; k++ {
		got = append(got, k.String())
	}
	for tr := Trigger(0); tr <= 6; tr++ {
		got = append(got, tr.String())
	}
	for o := Outcome(0); o <= 11; o++ {
		got = append(got, o.String())
	}
	want := []string{"", "refresh_started", "refresh_finished", "backoff_started", "backoff_ended",
		"persist_failed", "store_pickup", "lease_taken", "lease_lost", "unauthorized_retry",
		"token_dropped", "drop_ignored", "waited", "auth_switched", "nonce_retry", "grant_dead", "unknown",
		"", "first", "expired", "early", "rejected", "invalidated", "unknown",
		"", "ok", "invalid_grant", "invalid_client", "temporary", "transport", "store", "hook",
		"panic", "other", "picked_up", "unknown"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("String() (-want +got):\n%s", diff)
	}
}
