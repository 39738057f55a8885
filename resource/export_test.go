package resource

import "time"

// Internals the tests of package resource_test reach (the net/http
// export_test.go idiom): the parsers of what the authorization server
// sends, for the fuzz targets, and the size of the caches.

// ParseIntrospection parses an introspection answer checked against
// issuer and audience at now.
func ParseIntrospection(body []byte, now time.Time, issuer, audience string) (*AccessToken, error) {
	return parseIntrospection(body, "https://as.example/introspect", tokenChecks{
		issuer: issuer, audience: audience, now: now, leeway: introspectionLeeway,
	})
}

var (
	ParseKeySet     = parseKeySet
	ParseASMetadata = parseASMetadata
	MaxKeys         = maxKeys
)

// CacheLen returns the number of cached answers of i and how many of them
// are refusals.
func CacheLen(i *Introspection) (entries, refused int) {
	i.cache.mu.Lock()
	defer i.cache.mu.Unlock()
	return len(i.cache.entries), i.cache.refused
}

// JWTCacheLen returns the number of verified tokens v remembers.
func JWTCacheLen(v *JWTVerifier) int {
	v.cache.mu.Lock()
	defer v.cache.mu.Unlock()
	return len(v.cache.entries)
}
