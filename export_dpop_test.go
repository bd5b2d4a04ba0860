package oauth2refresh

// Challenge is a challenge of a WWW-Authenticate field, for the tests of parseChallenges.
type Challenge = challenge

// ParseChallenges is parseChallenges, for its tests.
func ParseChallenges(vs []string) []Challenge { return parseChallenges(vs) }
