/*
 * A stand-in for the monitors not packaged on these machines (firecracker, cloud-hypervisor,
 * solo5-hvt/spt, hyperlight-unikraft). It behaves like one as far as the runtime can tell: it checks that its argv
 * names a kernel that exists (and, for firecracker, reads the JSON config file it was given),
 * prints what it would boot on stdout (the "console"), then "runs" the guest: it exits with
 * the number given as `exit=N` in the guest command line, or sleeps until a signal when the
 * command line contains `wait`. SIGTERM ends it with status 0, as firecracker's does; as solo5-hvt
 * or solo5-spt it installs no handler, as the real tenders do (pid 1 of its pid namespace then
 * never sees SIGTERM). As hyperlight-unikraft it takes the kernel as its one positional argument,
 * checks that the --initrd file is readable, and prints the --memory bytes; it is given no command
 * line (the real one passes none to the guest), so it exits 0 once the guest "ran".
 * As firecracker with a "vsock" in its config it does what firecracker's hybrid vsock does for a
 * guest that connects to the host (vAccel): it binds its own socket at uds_path (which must be
 * writable), and the guest's connection to port P (from VACCEL_RPC_ADDRESS=vsock://2:P on the
 * command line) becomes a connection to the unix socket <uds_path>_P; it sends one line and prints
 * the agent's answer. Its drives must be readable files or devices (it prints each with its size);
 * a drive named FC_URUNIT_CONFIG is read as FreeBSD's urunit reads its config disk: whole 512-byte
 * sectors only (firecracker hides a trailing partial one), lines up to PAD, each printed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void on_term(int sig) { (void)sig; _exit(0); }

static char cmdline[8192];
static char kernel[4096];
static char initrd[4096];
static char memory[64];
static char uds[4096];
static long cid = -1;

static void copy(char *dst, size_t n, const char *src) { snprintf(dst, n, "%s", src); }

/* Pulls "key": "value" out of a JSON text (enough for firecracker's flat boot-source strings). */
static void json_string(const char *json, const char *key, char *dst, size_t n) {
	char pat[128];
	snprintf(pat, sizeof pat, "\"%s\"", key);
	const char *p = strstr(json, pat);
	if (!p) return;
	p = strchr(p + strlen(pat), '"');
	if (!p) return;
	p++;
	size_t i = 0;
	for (; *p && *p != '"' && i + 1 < n; p++) {
		if (*p == '\\' && p[1]) p++;
		dst[i++] = *p;
	}
	dst[i] = 0;
}

/* Pulls "key": number out of a JSON text. */
static long json_number(const char *json, const char *key) {
	char pat[128];
	snprintf(pat, sizeof pat, "\"%s\"", key);
	const char *p = strstr(json, pat);
	if (!p) return -1;
	p = strchr(p + strlen(pat), ':');
	return p ? strtol(p + 1, NULL, 10) : -1;
}

/* Each "drive_id"/"path_on_host" pair of a firecracker config: opened as firecracker opens them. */
static int drives(const char *name, const char *json) {
	for (const char *p = strstr(json, "\"drive_id\""); p; p = strstr(p + 1, "\"drive_id\"")) {
		char id[256] = "", host[4096] = "";
		json_string(p, "drive_id", id, sizeof id);
		json_string(p, "path_on_host", host, sizeof host);
		int fd = open(host, O_RDONLY);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) != 0) { fprintf(stderr, "%s: drive %s: cannot open %s\n", name, id, host); return 1; }
		long long size = S_ISBLK(st.st_mode) ? (long long)lseek(fd, 0, SEEK_END) : (long long)st.st_size;
		printf("%s: drive %s %lld bytes\n", name, id, size);
		if (!strcmp(id, "FC_URUNIT_CONFIG")) {
			static char conf[65536];
			long long whole = size - size % 512;
			ssize_t n = pread(fd, conf, whole < (long long)sizeof conf - 1 ? whole : (long long)sizeof conf - 1, 0);
			conf[n > 0 ? n : 0] = 0;
			for (char *line = strtok(conf, "\n"); line && strcmp(line, "PAD"); line = strtok(NULL, "\n")) printf("%s: urunit-conf %s\n", name, line);
		}
		close(fd);
	}
	return 0;
}

static int unix_socket(const char *path, struct sockaddr_un *sa) {
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa->sun_path) return -1;
	strcpy(sa->sun_path, path);
	return socket(AF_UNIX, SOCK_STREAM, 0);
}

/* firecracker's hybrid vsock, host side: its own socket at uds_path, the guest's connection to port P forwarded to <uds_path>_P. */
static int vsock_guest_connects(const char *name) {
	struct sockaddr_un sa;
	int l = unix_socket(uds, &sa);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(l, 1) != 0) {
		fprintf(stderr, "%s: cannot listen on vsock uds_path %s\n", name, uds);
		return 1;
	}
	printf("%s: vsock guest_cid %ld uds_path %s\n", name, cid, uds);
	const char *a = strstr(cmdline, "VACCEL_RPC_ADDRESS=vsock://2:");
	if (!a) { fflush(stdout); return 0; }
	char target[4200];
	snprintf(target, sizeof target, "%s_%ld", uds, strtol(a + strlen("VACCEL_RPC_ADDRESS=vsock://2:"), NULL, 10));
	int c = unix_socket(target, &sa);
	if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof sa) != 0) {
		fprintf(stderr, "%s: the guest's vsock connection: cannot reach %s\n", name, target);
		return 1;
	}
	char msg[128];
	int n = snprintf(msg, sizeof msg, "hello from cid %ld\n", cid);
	if (write(c, msg, n) != n) return 1;
	char reply[256];
	ssize_t r = read(c, reply, sizeof reply - 1);
	reply[r > 0 ? r : 0] = 0;
	printf("%s: vaccel-reply %s", name, reply);
	fflush(stdout);
	close(c);
	return 0;
}

int main(int argc, char **argv) {
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	if (!strstr(name, "solo5")) signal(SIGTERM, on_term);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--config-file") && i + 1 < argc) {
			FILE *f = fopen(argv[++i], "r");
			if (!f) { fprintf(stderr, "%s: cannot open config %s\n", name, argv[i]); return 1; }
			static char json[65536];
			size_t n = fread(json, 1, sizeof json - 1, f);
			json[n] = 0;
			fclose(f);
			json_string(json, "kernel_image_path", kernel, sizeof kernel);
			json_string(json, "boot_args", cmdline, sizeof cmdline);
			if (drives(name, json) != 0) return 1;
			if (strstr(json, "\"vsock\"")) {
				json_string(json, "uds_path", uds, sizeof uds);
				cid = json_number(json, "guest_cid");
			}
		} else if ((!strcmp(a, "--kernel") || !strcmp(a, "-kernel")) && i + 1 < argc) {
			copy(kernel, sizeof kernel, argv[++i]);
		} else if ((!strcmp(a, "--cmdline") || !strcmp(a, "-append")) && i + 1 < argc) {
			copy(cmdline, sizeof cmdline, argv[++i]);
		} else if (strstr(name, "hyperlight") && !strcmp(a, "--initrd") && i + 1 < argc) {
			copy(initrd, sizeof initrd, argv[++i]);
		} else if (strstr(name, "hyperlight") && !strcmp(a, "--memory") && i + 1 < argc) {
			copy(memory, sizeof memory, argv[++i]);
		} else if (a[0] != '-' && !kernel[0] && strstr(name, "hyperlight")) {
			copy(kernel, sizeof kernel, a);
		} else if (a[0] != '-' && !kernel[0] && strstr(name, "solo5")) {
			copy(kernel, sizeof kernel, a);
			if (i + 1 < argc) copy(cmdline, sizeof cmdline, argv[++i]);
		} else if (a[0] != '-' && !kernel[0]) {
			/* an option's value we do not interpret */
		}
	}
	if (!kernel[0]) { fprintf(stderr, "%s: no kernel given\n", name); return 1; }
	if (access(kernel, R_OK) != 0) { fprintf(stderr, "%s: kernel %s not readable\n", name, kernel); return 1; }
	if (initrd[0] && access(initrd, R_OK) != 0) { fprintf(stderr, "%s: initrd %s not readable\n", name, initrd); return 1; }
	printf("%s: booting %s\n", name, kernel);
	if (memory[0]) printf("%s: memory %s\n", name, memory);
	printf("%s: cmdline %s\n", name, cmdline);
	fflush(stdout);
	if (uds[0] && vsock_guest_connects(name) != 0) return 1;
	/* A syscall no tender makes (mkdir): refused under solo5-hvt's seccomp allowlist (SIGSYS). */
	if (strstr(cmdline, "forbidden")) {
		printf("%s: trying a forbidden syscall\n", name);
		fflush(stdout);
		long r = syscall(SYS_mkdir, "/forbidden-by-seccomp", 0700);
		printf("%s: forbidden syscall returned %ld\n", name, r);
		fflush(stdout);
	}
	/* Waits with the raw nanosleep (glibc's sleep and pause use syscalls outside solo5's allowlist). */
	if (strstr(cmdline, "wait")) {
		struct timespec ts = {1, 0};
		for (;;) syscall(SYS_nanosleep, &ts, NULL);
	}
	const char *e = strstr(cmdline, "exit=");
	return e ? atoi(e + 5) & 0xff : 0;
}
