package oauth2refresh

// RedactError is redactError, for the tests of its contract: the TokenSource makes hook and
// Store errors safe to log with it.
var RedactError = redactError
