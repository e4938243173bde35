export { startRedisCluster, type RedisCluster, type RedisClusterNode, type RedisClusterOptions } from './redis-cluster.ts';
export { freePort, hasRedisServer, startRedisServer, type RedisServer, type RedisServerOptions } from './redis-server.ts';
export { SiloProcess, TestCluster, type TestClusterOptions } from './test-cluster.ts';
