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
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void on_term(int sig) { (void)sig; _exit(0); }

static char cmdline[8192];
static char kernel[4096];
static char initrd[4096];
static char memory[64];

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
