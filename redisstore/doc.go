// Package redisstore keeps the DPoP proofs a resource server has accepted
// in Redis, so that every instance of an API behind a load balancer refuses
// a proof that another instance accepted ([RFC 9449] §11.1). It is a module
// of its own, so that the dpop module does not depend on a Redis client.
//
// A [Store] is a [resource.ReplayStore] on a go-redis client (one server,
// Sentinel or Cluster):
//
//	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
//		Addrs:                 []string{"redis:6379"},
//		ContextTimeoutEnabled: true,
//	})
//	store := &redisstore.Store{Client: rdb}
//	// resource.Config{…, Replay: store}
//
// Each claim is one command in one round trip, SET with NX, GET and an
// expiry: of any number of instances claiming one proof at once, exactly
// one is told it is new. The key names the sender and the proof (a hash of
// the proof key's thumbprint and the jti, under a prefix, of fixed size).
// The value, 22 characters, names the claim that wrote it: go-redis sends
// a command again when its answer is lost (a connection closed, a
// failover), and the claim then finds its own record, which is not a
// replay. The record expires when the Verifier would no longer accept the
// proof anyway, counted by Redis from when the command arrives. SET with
// both NX and GET needs Redis 7.0 or later (or Valkey).
//
// # When Redis is away
//
// A claim that Redis cannot answer (it is down, refuses the command, or
// does not answer within the Store's Timeout, 150 ms by default) fails
// closed: Claim returns an *[UnavailableError], and the Verifier refuses
// the request with 503, not 401, so the client keeps its token and may try
// again. OnUnavailable sees every such failure, to count them.
//
// FailOpen accepts such proofs instead, unrecorded: replays are then
// accepted for as long as Redis is away. Choose it only where refusing
// every request is worse. A request whose own context ends (its client
// closes the connection) is never accepted this way, so that a client
// cannot skip the claim by hanging up.
//
// Each claim is bounded by the request's context and by the Store's
// Timeout. Give the client ContextTimeoutEnabled: without it, go-redis
// bounds its socket reads by its ReadTimeout alone (3 s by default), and
// the Store waits for each command in a goroutine of its own that it
// leaves behind on a timeout.
//
// # What Redis forgets
//
// A record lost is a replay accepted: a proof that an instance accepted
// before the loss is accepted once more, up to the end of its record (the
// Verifier's iat window: about a minute by default). Redis loses records
//
//   - when it restarts without persistence: every record is gone, so each
//     proof accepted in the window before the restart can be replayed once
//     more. Enable AOF (appendonly yes, appendfsync everysec or always)
//     where that matters; RDB snapshots alone lose the minutes since the
//     last one.
//   - on a failover (Sentinel, Cluster): replication is asynchronous, and a
//     record the primary acknowledged but had not sent to its replicas is
//     lost when a replica takes over. The server's min-replicas-to-write
//     and min-replicas-max-lag keep a primary cut off from its replicas from
//     accepting claims it would lose; WAIT after each claim would narrow the
//     window but not close it (Redis does not promise that an acknowledged
//     write survives a failover), would add a replication round trip to
//     every request, and cannot be sent with the SET to the key's node in a
//     go-redis Cluster pipeline, so the Store does not send it.
//   - when it evicts keys for memory: use maxmemory-policy noeviction (a
//     full Redis then refuses the claim, and the Store fails closed), or a
//     Redis of its own. The records take about 200 bytes each, and live for
//     the iat window: the number of requests per minute bounds their number.
//   - on a redis.Ring, which moves a shard's keys to the others when it
//     leaves: use one server, Sentinel or Cluster.
//
// # Nonces across instances
//
// The server nonces of the resource package (RFC 9449 §9) need no shared
// state: the resource package's NonceIssuer derives them from an HMAC key
// and the time, so every instance configured with the same keys accepts
// the nonces of the others. Give each instance the same key ring, rotate
// it on every instance, and keep their clocks in step. During a rotation, an
// instance that has not yet rotated answers a nonce made with the new key
// with a use_dpop_nonce challenge that carries its own nonce: a client
// that follows RFC 9449 §9 (this SDK's does) pays one more round trip, and
// no request fails. This module therefore
// keeps no nonce state.
//
// [RFC 9449]: https://www.rfc-editor.org/rfc/rfc9449
package redisstore
