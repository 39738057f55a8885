package resource

// Internals the tests of package resource_test reach (the net/http
// export_test.go idiom): the parsers of what the authorization server
// sends, for the fuzz targets, and the size of the caches.

var (
	ParseKeySet     = parseKeySet
	ParseASMetadata = parseASMetadata
	MaxKeys         = maxKeys
)

// JWTCacheLen returns the number of verified tokens v remembers.
func JWTCacheLen(v *JWTVerifier) int {
	v.cache.mu.Lock()
	defer v.cache.mu.Unlock()
	return len(v.cache.entries)
}
