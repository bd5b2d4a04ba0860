package oauth2refresh

// Seams of DeadGrantError for the external tests.

// The reasons of a dead grant, as the stored dead mark names them.
const (
	ReasonInvalidGrant        = reasonInvalidGrant
	ReasonRefreshTokenExpired = reasonRefreshTokenExpired
	ReasonRevoked             = reasonRevoked
)

// DeadReason returns the reason d's grant is dead.
func DeadReason(d *DeadGrantError) string { return d.reason }

// NewDeadGrantError returns the DeadGrantError of key's grant, dead for reason.
func NewDeadGrantError(key, reason string) *DeadGrantError {
	return &DeadGrantError{Key: key, reason: reason}
}
