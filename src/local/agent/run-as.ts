/**
 * Who a container the agent starts runs as. A genuine Mesos agent (with `--switch_user`, its
 * default) runs a command task or an executor as its CommandInfo.user, else as the framework's
 * FrameworkInfo.user; the local agent does the same, so a framework behaves alike on both.
 */
import type { CommandInfo, FrameworkInfo } from '../../mesos/types.js';

/** The `user` of a container spec: absent (the isolator's default) only when neither names one. */
export function userOf(cmd: CommandInfo | undefined, framework: FrameworkInfo): { user: string } | Record<string, never> {
  const user = cmd?.user ?? (framework.user === '' ? undefined : framework.user);
  return user === undefined ? {} : { user };
}
