package redisstore_test

import (
	"github.com/dpopkit/dpop/redisstore"
	"github.com/redis/go-redis/v9"
)

// A Store on one Redis server, Sentinel or a Cluster, for the Replay field
// of the resource package's Config. Every instance of the API uses the
// same Redis.
func ExampleStore() {
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 []string{"127.0.0.1:6379"},
		ContextTimeoutEnabled: true, // bound each command by the request's context
	})
	defer rdb.Close()
	store := &redisstore.Store{Client: rdb}
	_ = store // resource.Config{…, Replay: store}
}
