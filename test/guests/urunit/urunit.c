/*
 * A stand-in for urunit, the init of urunc's Linux guests, written from its documented contract
 * (nubificus/urunit main.c as urunc v0.8.0 drives it) so the e2e tests check what a real urunit
 * guest would see, not what this project's own guest scripts expect:
 *  - URUNIT_DEFROUTE set: a device default route through eth0 (no gateway), before the app;
 *  - URUNIT_CONFIG names the config file (/urunit.conf in the initrd, or /sys/firmware/initrd):
 *    UES..UEE env lines, UCS..UCE UID:/GID:/WD:, UBS..UBE ID:/MP: block mounts (ext4, found by
 *    virtio serial); the app runs with exactly that env, that gid, uid and working directory;
 *  - the app's argv is init's argv; a single-quoted multi-word argument is regrouped;
 *  - init reaps every child and then restarts the machine (qemu's -no-reboot ends the VM).
 * Accommodations for the Debian test kernel, whose drivers are modules and whose ip= cannot
 * configure a NIC that appears later: it first loads /modules.order (when present) and applies ip=
 * to eth0 as the kernel's IP autoconfiguration would (address, mask, and a gateway route only when
 * the gateway is on-link); from an initrd root (where the kernel mounts no devtmpfs) it mounts
 * devtmpfs so data disks have device nodes. It prints "urunit: app exited with N" for the tests.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void load_modules(void) {
	FILE *f = fopen("/modules.order", "r");
	char name[256], path[300];
	if (!f) return;
	while (fgets(name, sizeof name, f)) {
		name[strcspn(name, "\n")] = 0;
		snprintf(path, sizeof path, "/modules/%s", name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) continue;
		syscall(SYS_finit_module, fd, "", 0);
		close(fd);
	}
	fclose(f);
}

static int set_addr(int s, unsigned long req, const char *ifname, in_addr_t a) {
	struct ifreq r;
	memset(&r, 0, sizeof r);
	strncpy(r.ifr_name, ifname, IFNAMSIZ - 1);
	struct sockaddr_in *sin = (struct sockaddr_in *)&r.ifr_addr;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = a;
	return ioctl(s, req, &r);
}

static void link_up(int s, const char *ifname) {
	struct ifreq r;
	memset(&r, 0, sizeof r);
	strncpy(r.ifr_name, ifname, IFNAMSIZ - 1);
	if (ioctl(s, SIOCGIFFLAGS, &r) == 0) {
		r.ifr_flags |= IFF_UP;
		ioctl(s, SIOCSIFFLAGS, &r);
	}
}

static int add_route(int s, in_addr_t gw, int flags) {
	struct rtentry rt;
	memset(&rt, 0, sizeof rt);
	((struct sockaddr_in *)&rt.rt_dst)->sin_family = AF_INET;
	((struct sockaddr_in *)&rt.rt_genmask)->sin_family = AF_INET;
	((struct sockaddr_in *)&rt.rt_gateway)->sin_family = AF_INET;
	((struct sockaddr_in *)&rt.rt_gateway)->sin_addr.s_addr = gw;
	rt.rt_flags = flags;
	rt.rt_dev = (char *)"eth0";
	return ioctl(s, SIOCADDRT, &rt);
}

/* ip=<client>::<gw>:<mask>:<host>:eth0:off from /proc/cmdline, as the kernel's ipconfig applies it. */
static void apply_ip(int s) {
	char buf[4096] = {0}, *p;
	int fd = open("/proc/cmdline", O_RDONLY);
	if (fd < 0) return;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0) return;
	for (p = strtok(buf, " \n"); p; p = strtok(NULL, " \n")) {
		if (strncmp(p, "ip=", 3)) continue;
		char *f[7] = {0};
		char *q = p + 3;
		for (int i = 0; i < 7 && q; i++) {
			f[i] = q;
			q = strchr(q, ':');
			if (q) *q++ = 0;
		}
		if (!f[0] || !f[2] || !f[3]) return;
		in_addr_t ip = inet_addr(f[0]), gw = inet_addr(f[2]), mask = inet_addr(f[3]);
		link_up(s, "lo");
		set_addr(s, SIOCSIFADDR, "eth0", ip);
		set_addr(s, SIOCSIFNETMASK, "eth0", mask);
		link_up(s, "eth0");
		if ((ip & mask) == (gw & mask)) add_route(s, gw, RTF_UP | RTF_GATEWAY);
		return;
	}
}

struct config {
	char **env;
	int nenv;
	unsigned uid, gid;
	char *wd;
	char *ids[16], *mps[16];
	int nblk;
};

/* Parses the UES/UCS/UBS sections in order; returns 0 when the config is valid. */
static int parse_config(char *text, struct config *c) {
	char *save = NULL, *line = strtok_r(text, "\n", &save);
	memset(c, 0, sizeof *c);
	c->env = calloc(1024, sizeof(char *));
	if (line && !strncmp(line, "UES", 3)) {
		for (line = strtok_r(NULL, "\n", &save); line && strncmp(line, "UEE", 3); line = strtok_r(NULL, "\n", &save))
			if (c->nenv < 1023) c->env[c->nenv++] = line;
		if (!line) return fprintf(stderr, "urunit: \"UEE\" was not found\n"), -1;
		line = strtok_r(NULL, "\n", &save);
	}
	if (line && !strncmp(line, "UCS", 3)) {
		for (line = strtok_r(NULL, "\n", &save); line && strncmp(line, "UCE", 3); line = strtok_r(NULL, "\n", &save)) {
			char *v = strchr(line, ':');
			if (!v) continue;
			for (v++; *v == ' '; v++);
			if (!strncmp(line, "UID", 3)) c->uid = (unsigned)strtoul(v, NULL, 10);
			else if (!strncmp(line, "GID", 3)) c->gid = (unsigned)strtoul(v, NULL, 10);
			else if (!strncmp(line, "WD", 2)) {
				if (!*v) return fprintf(stderr, "urunit: empty WD\n"), -1;
				c->wd = v;
			}
		}
		if (!line) return fprintf(stderr, "urunit: \"UCE\" was not found\n"), -1;
		line = strtok_r(NULL, "\n", &save);
	}
	if (line && !strncmp(line, "UBS", 3)) {
		for (line = strtok_r(NULL, "\n", &save); line && strncmp(line, "UBE", 3); line = strtok_r(NULL, "\n", &save)) {
			char *v = strchr(line, ':');
			if (!v || c->nblk >= 16) continue;
			if (!strncmp(line, "ID:", 3)) c->ids[c->nblk] = v + 1;
			else if (!strncmp(line, "MP:", 3) && c->ids[c->nblk]) c->mps[c->nblk++] = v + 1;
		}
		if (!line) return fprintf(stderr, "urunit: \"UBE\" was not found\n"), -1;
	}
	return 0;
}

static void mount_volume(const char *id, const char *mp) {
	char path[64], serial[32];
	for (char d = 'a'; d <= 'z'; d++) {
		snprintf(path, sizeof path, "/sys/block/vd%c/serial", d);
		FILE *f = fopen(path, "r");
		if (!f) continue;
		if (fgets(serial, sizeof serial, f)) {
			serial[strcspn(serial, "\n\r \t")] = 0;
			if (!strcmp(serial, id)) {
				char dev[16];
				snprintf(dev, sizeof dev, "/dev/vd%c", d);
				char dir[512];
				snprintf(dir, sizeof dir, "%s", mp);
				for (char *p = dir + 1; *p; p++) if (*p == '/') { *p = 0; mkdir(dir, 0755); *p = '/'; }
				mkdir(dir, 0755);
				if (mount(dev, mp, "ext4", 0, "") != 0) perror("mount");
				fclose(f);
				return;
			}
		}
		fclose(f);
	}
	fprintf(stderr, "urunit: could not find any virtio block device with serial ID %s\n", id);
}

static void child(char **argv) {
	const char *file = getenv("URUNIT_CONFIG");
	struct config c;
	if (file) {
		mkdir("/proc", 0555);
		mount("proc", "/proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL);
		mkdir("/sys", 0555);
		mount("sysfs", "/sys", "sysfs", 0, NULL);
		FILE *f = fopen(file, "rb");
		static char text[1 << 20];
		size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
		if (f) fclose(f);
		text[n] = 0;
		if (n > 0 && parse_config(text, &c) == 0) {
			for (int i = 0; i < c.nblk; i++) mount_volume(c.ids[i], c.mps[i]);
			if (setgid(c.gid) || setuid(c.uid)) { perror("urunit: set user"); exit(1); }
			if (c.wd && chdir(c.wd)) { perror("urunit: set CWD"); exit(1); }
			if (c.nenv > 0) {
				const char *path = NULL;
				for (int i = 0; i < c.nenv; i++) if (!strncmp(c.env[i], "PATH=", 5)) path = c.env[i] + 5;
				if (argv[0][0] == '/' || !path) execve(argv[0], argv, c.env);
				else {
					char buf[4096], *dirs = strdup(path);
					for (char *d = strtok(dirs, ":"); d; d = strtok(NULL, ":")) {
						snprintf(buf, sizeof buf, "%s/%s", d, argv[0]);
						execve(buf, argv, c.env);
					}
				}
				fprintf(stderr, "urunit: exec %s failed: %s\n", argv[0], strerror(errno));
				exit(errno == ENOENT ? 127 : 126);
			}
		}
	}
	execvp(argv[0], argv);
	fprintf(stderr, "urunit: exec %s failed: %s\n", argv[0], strerror(errno));
	exit(127);
}

int main(int argc, char **argv) {
	load_modules();
	if (access("/dev/null", F_OK) != 0) mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	if (access("/proc/cmdline", R_OK) != 0) {
		mkdir("/proc", 0555);
		mount("proc", "/proc", "proc", 0, NULL);
	}
	apply_ip(s);
	if (getenv("URUNIT_DEFROUTE") && add_route(s, 0, RTF_UP) != 0) perror("urunit: default route");
	close(s);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	/* argv[1..]: the app; a word opening with ' is joined with the next words up to the closing '. */
	char **app = calloc((size_t)argc + 1, sizeof(char *));
	int n = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		size_t len = strlen(a);
		if (a[0] == '\'' && !(len > 1 && a[len - 1] == '\'')) {
			char *buf = calloc(8192, 1);
			size_t used = 0;
			const char *piece = a + 1;
			for (;;) {
				size_t l = strlen(piece);
				int last = piece != a + 1 && l > 0 && piece[l - 1] == '\'';
				if (last) l--;
				if (used + l + 2 < 8192) { memcpy(buf + used, piece, l); used += l; }
				if (last || ++i >= argc) break;
				buf[used++] = ' ';
				piece = argv[i];
			}
			app[n++] = buf;
			break; /* as urunit: words after the first grouped argument are dropped */
		}
		app[n++] = (char *)a;
	}
	if (n == 0) { fprintf(stderr, "urunit: no application to execute\n"); return 1; }
	pid_t pid = fork();
	if (pid == 0) child(app);
	int status, code = 1;
	for (;;) {
		pid_t w = waitpid(-1, &status, 0);
		if (w < 0 && errno == ECHILD) break;
		if (w == pid) code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	}
	printf("urunit: app exited with %d\n", code);
	fflush(stdout);
	sync();
	reboot(RB_AUTOBOOT);
	return 0;
}
