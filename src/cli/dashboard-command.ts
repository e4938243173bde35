import type { Command } from 'commander';
import { InvalidOptionError } from '../errors/errors.ts';
import { startDashboard, type DashboardOptions } from '../dashboard/dashboard-server.ts';

interface DashboardFlags {
  port?: string;
  host?: string;
  redis?: string;
  prefix?: string;
  token?: string;
  readOnly?: boolean;
  jaeger?: string;
  jaegerService?: string;
}

/**
 * `redgrain dashboard`: serves the web dashboard until SIGINT or SIGTERM. Bound to 127.0.0.1
 * unless told otherwise; another address needs a token (flag or REDGRAIN_DASHBOARD_TOKEN).
 */
export function addDashboardCommand(program: Command, out: (text: string) => void): void {
  program
    .command('dashboard')
    .description('serve a web dashboard of the cluster: silos, live charts, grains, dead letters')
    .option('--port <port>', 'port to listen on (default 8080)')
    .option('--host <address>', 'address to bind (default 127.0.0.1; anything else needs a token)')
    .option('--redis <url>', 'Redis URL (default: REDIS_CLUSTER, REDIS_SENTINELS or REDIS_URL, else redis://127.0.0.1:6379)')
    .option('--prefix <prefix>', 'key prefix of the application (default: REDGRAIN_PREFIX, else redgrain)')
    .option('--token <token>', 'require this token on every request (default: REDGRAIN_DASHBOARD_TOKEN)')
    .option('--read-only', 'hide redrive and discard of dead letters')
    .option('--jaeger <url>', "Jaeger UI URL, to link each grain's traces (default: REDGRAIN_JAEGER_URL)")
    .option('--jaeger-service <name>', 'the service name the silos trace under (default: redgrain-silo)')
    .action(async (flags: DashboardFlags) => {
      const port = flags.port === undefined ? 8080 : Number(flags.port);
      if (!Number.isInteger(port) || port < 0 || port > 65_535)
        throw new InvalidOptionError('--port', JSON.stringify(flags.port), 'must be a port number (0 to 65535)');
      const token = flags.token ?? process.env.REDGRAIN_DASHBOARD_TOKEN;
      const jaegerUrl = flags.jaeger ?? process.env.REDGRAIN_JAEGER_URL;
      const options: DashboardOptions = { port, readOnly: flags.readOnly === true };
      if (flags.host !== undefined) options.host = flags.host;
      if (flags.redis !== undefined) options.redis = flags.redis;
      if (flags.prefix !== undefined) options.keyPrefix = flags.prefix;
      if (token !== undefined && token !== '') options.token = token;
      if (jaegerUrl !== undefined && jaegerUrl !== '') options.jaegerUrl = jaegerUrl;
      if (flags.jaegerService !== undefined) options.jaegerService = flags.jaegerService;
      const dashboard = await startDashboard(options);
      out(`redgrain dashboard at ${dashboard.url}${options.token === undefined ? '' : ' (open it with ?token=<token>)'}`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await dashboard.close();
    });
}
