// solo5 tenders: hvt (KVM) and spt (seccomp, no KVM). `--mem=MB`, devices named as the guest was
// built (--net:<name>=tap, --block:<name>=path), then the kernel and its command line as argv.
// solo5-hvt has no syscall filter of its own: when the container asks for seccomp, runc installs
// urunc's allowlist (hvt.go PreExec) with no_new_privs before exec; any other syscall traps (SIGSYS).
import type { Hypervisor, MonitorCommand, OciSeccomp, VmSpec } from './types.js';

/** The syscalls solo5-hvt needs (urunc's hvt.go allowlist for x86_64 and arm64). */
export function hvtSeccomp(arch: VmSpec['arch']): OciSeccomp {
  const names = ['rt_sigaction', 'ioctl', 'pread64', 'mmap', 'recvmsg', 'openat', 'sendto', 'mprotect', 'write', 'epoll_ctl',
    'epoll_create1', 'read', 'close', 'fstat', 'munmap', 'brk', 'execve', 'timerfd_create', 'lseek', 'personality', 'socket', 'bind',
    'getsockname', 'exit', 'exit_group', 'getpid', 'tgkill', 'nanosleep', 'futex', 'epoll_pwait', 'rt_sigreturn', 'timerfd_settime',
    'pwrite64', 'set_tid_address', 'set_robust_list', 'rseq', 'prlimit64', 'getrandom'];
  names.push(...(arch === 'aarch64' ? ['faccessat', 'fstatat'] : ['open', 'stat', 'access', 'arch_prctl', 'newfstatat']));
  // runc installs the filter and then closes its inherited fds before exec (fstatfs on /proc,
  // getdents64 of /proc/self/fd; measured with SCMP_ACT_LOG): the only two additions to urunc's list.
  names.push('fstatfs', 'getdents64');
  return {
    defaultAction: 'SCMP_ACT_TRAP',
    architectures: [arch === 'aarch64' ? 'SCMP_ARCH_AARCH64' : 'SCMP_ARCH_X86_64'],
    syscalls: [{ names, action: 'SCMP_ACT_ALLOW' }],
  };
}

function solo5(name: 'hvt' | 'spt'): Hypervisor {
  return {
    name,
    defaultBinary: () => `solo5-${name}`,
    memoryUnit: 1e6,
    accel: () => (name === 'hvt' ? 'kvm' : 'none'),
    dataDirs: () => [],
    command(binary: string, vm: VmSpec): MonitorCommand {
      const a = [binary, `--mem=${vm.memoryMb}`];
      if (vm.net) a.push(`--net:${vm.guest.solo5Net}=${vm.net.tap}`, `--net-mac:${vm.guest.solo5Net}=${vm.net.mac}`);
      // A solo5 guest is built with one block device name: its first disk (urunc's MonitorBlockCli, Block[0]).
      const [disk] = vm.blocks;
      if (disk) a.push(`--block:${vm.guest.solo5Block}=${disk.path}`);
      a.push(vm.kernel);
      if (vm.guest.cmdline) a.push(vm.guest.cmdline);
      return { argv: a, files: {}, qmp: undefined, seccomp: name === 'hvt' && vm.seccomp ? hvtSeccomp(vm.arch) : undefined };
    },
  };
}

export const hvt = solo5('hvt');
export const spt = solo5('spt');
