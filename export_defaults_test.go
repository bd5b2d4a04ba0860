package oauth2refresh

// Seams of the defaults for the external tests (package oauth2refresh_test).

const (
	DefaultExpiryMargin = defaultExpiryMargin
	DefaultTimeout      = defaultTimeout
	MaxErrorBody        = maxErrorBody
)
