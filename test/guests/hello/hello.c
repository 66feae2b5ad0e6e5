/*
 * A multiboot (v1) "hello" kernel used as the project's test unikernel.
 * It prints a greeting and the kernel command line on COM1, then ends the VM the way a real guest
 * does with what the runtime gave it: through the isa-debug-exit device at port 0x501, which urunc
 * gives mewz guests only (qemu exits with status (code << 1) | 1), where code is the number given
 * as `exit=N` anywhere on the command line, 3 when absent (mewz gets no arguments); without that
 * device it powers the machine off through ACPI (qemu then exits 0): PIIX4's PM1a control port
 * 0x604 on `pc`, the GED sleep control register at 0xfea00200 on `microvm`. Given a Unikraft command
 * line it ends the VM as Unikraft does instead (unikraft_system_off below).
 * With a `wait` word on the command line it halts instead, until the VM is killed. With `count` it
 * prints "count N" (N = 1, 2, ...) every 100 ms of the VM's own time, measured on the PIT's channel
 * 0 (which qemu stops with the VM, KVM's in-kernel PIT too), until the VM is killed: a paused or
 * restored guest shows where it was.
 * Freestanding: no libc, 32-bit protected mode as set up by the multiboot loader.
 */
#include <stdint.h>

#define MB_MAGIC 0x1BADB002u
#define MB_FLAGS 0x00000000u

__attribute__((section(".multiboot"), used, aligned(4)))
static const uint32_t multiboot_header[3] = {MB_MAGIC, MB_FLAGS, (uint32_t)-(MB_MAGIC + MB_FLAGS)};

struct multiboot_info {
	uint32_t flags;
	uint32_t mem_lower, mem_upper, boot_device;
	uint32_t cmdline;
};

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }

#define COM1 0x3f8

static void serial_init(void) {
	outb(COM1 + 1, 0x00); /* no interrupts */
	outb(COM1 + 3, 0x80); /* DLAB */
	outb(COM1 + 0, 0x01); /* 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03); /* 8N1 */
	outb(COM1 + 2, 0xC7); /* FIFO */
}

static void putc_serial(char c) {
	for (int i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++) /* wait for THR empty */
		;
	outb(COM1, (uint8_t)c);
}

static void puts_serial(const char *s) {
	for (; *s; s++) {
		if (*s == '\n') putc_serial('\r');
		putc_serial(*s);
	}
}

static int has_word(const char *cmdline, const char *w) {
	for (const char *p = cmdline; *p; p++) {
		if (p != cmdline && p[-1] != ' ') continue;
		const char *a = p, *b = w;
		while (*b && *a == *b) a++, b++;
		if (!*b && (*a == ' ' || *a == 0)) return 1;
	}
	return 0;
}

/* The number after the first "exit=" token, or 3. */
static uint32_t exit_code(const char *cmdline) {
	for (const char *p = cmdline; *p; p++) {
		if ((p == cmdline || p[-1] == ' ') && p[0] == 'e' && p[1] == 'x' && p[2] == 'i' && p[3] == 't' && p[4] == '=') {
			uint32_t n = 0;
			for (p += 5; *p >= '0' && *p <= '9'; p++) n = n * 10 + (uint32_t)(*p - '0');
			return n & 0x7f;
		}
	}
	return 3;
}

static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }

/*
 * With UKARGS=1 on its command line the kernel reads it back as a Unikraft kernel does, written from
 * Unikraft's rules (lib/ukargparse/argparse.c uk_argnparse; lib/uklibparam/parser.c
 * uk_libparam_parse), and prints what its application would get: words split at blanks; inside
 * '...' everything is literal; inside "..." only \" and \\ are escapes; elsewhere a backslash takes
 * the next character as it is; a word that comes out empty is dropped. The first word is argv[0];
 * the library parameters run to the first "--" outside a list; `env.vars=[` opens a list that the
 * first word ending in ] closes; the words after "--" are the application's arguments.
 */
static char uk_buf[4096];
static char *uk_words[128];
static int uk_nwords;

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\n'; }

static void uk_split(const char *s) {
	char *o = uk_buf, *end = uk_buf + sizeof uk_buf - 1;
	uk_nwords = 0;
	while (*s) {
		while (is_blank(*s)) s++;
		if (!*s) break;
		char *start = o;
		int dq = 0, sq = 0;
		for (; *s && o < end; s++) {
			char c = *s;
			if (sq) {
				if (c == '\'') sq = 0;
				else *o++ = c;
			} else if (dq) {
				if (c == '\\' && (s[1] == '"' || s[1] == '\\')) *o++ = *++s;
				else if (c == '"') dq = 0;
				else *o++ = c;
			} else if (is_blank(c)) {
				break;
			} else if (c == '\'') {
				sq = 1;
			} else if (c == '"') {
				dq = 1;
			} else if (c == '\\' && s[1]) {
				*o++ = *++s;
			} else {
				*o++ = c;
			}
		}
		*o++ = 0;
		if (o - 1 > start && uk_nwords < 128) uk_words[uk_nwords++] = start;
	}
}

static int str_eq(const char *a, const char *b) {
	while (*a && *a == *b) a++, b++;
	return *a == *b;
}

static int starts_with(const char *s, const char *p) {
	while (*p && *s == *p) s++, p++;
	return !*p;
}

static void uk_print(const char *label, const char *w) {
	puts_serial(label);
	puts_serial(": [");
	puts_serial(w);
	puts_serial("]\n");
}

static void uk_report(const char *cmdline) {
	uk_split(cmdline);
	int in_list = 0, args_from = uk_nwords;
	for (int i = 1; i < uk_nwords; i++) {
		char *w = uk_words[i];
		if (!in_list && str_eq(w, "--")) {
			args_from = i + 1;
			break;
		}
		if (!in_list && starts_with(w, "env.vars=[")) {
			in_list = 1;
			w += 10;
		}
		if (!in_list) continue;
		char *e = w;
		while (*e) e++;
		int closes = e > w && e[-1] == ']';
		if (closes) e[-1] = 0;
		if (*w) uk_print("uk-env", w);
		if (closes) in_list = 0;
	}
	if (uk_nwords > 0) uk_print("uk-arg", uk_words[0]);
	for (int i = args_from; i < uk_nwords; i++) uk_print("uk-arg", uk_words[i]);
}

/* ACPI S5 (soft off): SLP_EN with sleep type 0 on PIIX4 (pc), type 5 on microvm's GED. Paging is off: physical addresses. */
static void power_off(void) {
	outw(0x604, 0x2000);
	*(volatile uint8_t *)(uintptr_t)0xfea00200u = (5u << 2) | 0x20u;
}

/*
 * How a Unikraft kernel ends the VM on qemu (plat/common/x86/cpu_native.c system_off): on a crash it
 * pokes the isa-debug-exit device with 42 first; then an ACPI power-off at PIIX4's port 0x604 (which
 * `pc` has and microvm does not); then the debug-exit device with 41 (qemu exits (41 << 1) | 1 = 83);
 * then it halts. Without the device on microvm nothing ends the VM. Taken by this kernel when its
 * command line is Unikraft's (the word "Unikraft" that urunc puts first), "crash" asking for the crash path.
 */
static void unikraft_system_off(int crash) {
	if (crash) outw(0x501, 42);
	outw(0x604, 0x2000);
	outw(0x501, 41);
	for (;;) __asm__ volatile("cli; hlt");
}

/* The PIT's channel 0 as a rate generator of 10 ms periods (mode 2, count 11932 at 1193182 Hz). */
static void pit_start(void) {
	outb(0x43, 0x34); /* channel 0, lobyte/hibyte, mode 2, binary */
	outb(0x40, (uint8_t)(11932 & 0xff));
	outb(0x40, (uint8_t)(11932 >> 8));
}

static uint16_t pit_count(void) {
	outb(0x43, 0x00); /* latch channel 0 */
	uint8_t lo = inb(0x40);
	uint8_t hi = inb(0x40);
	return (uint16_t)(lo | (hi << 8));
}

/* 100 ms of PIT time: ten reloads of channel 0 (the count goes up only when it reloads). */
static void pit_wait_100ms(void) {
	uint16_t prev = pit_count();
	for (int periods = 0; periods < 10;) {
		uint16_t now = pit_count();
		if (now > prev) periods++;
		prev = now;
	}
}

static void put_uint(uint32_t n) {
	char buf[12];
	int i = 0;
	do {
		buf[i++] = (char)('0' + n % 10);
		n /= 10;
	} while (n);
	while (i) putc_serial(buf[--i]);
}

void kmain(uint32_t magic, const struct multiboot_info *mbi) {
	const char *cmdline = "";
	serial_init();
	if (magic == 0x2BADB002u && (mbi->flags & (1u << 2)) && mbi->cmdline) cmdline = (const char *)(uintptr_t)mbi->cmdline;
	puts_serial("Hello from a urunc-ts unikernel!\n");
	puts_serial("cmdline: ");
	puts_serial(cmdline);
	puts_serial("\n");
	if (has_word(cmdline, "UKARGS=1")) uk_report(cmdline);
	if (has_word(cmdline, "count")) {
		pit_start();
		for (uint32_t n = 1;; n++) {
			pit_wait_100ms();
			puts_serial("count ");
			put_uint(n);
			puts_serial("\n");
		}
	}
	if (has_word(cmdline, "wait")) {
		puts_serial("waiting\n");
		for (;;) __asm__ volatile("cli; hlt");
	}
	if (has_word(cmdline, "Unikraft")) unikraft_system_off(has_word(cmdline, "crash"));
	outb(0x501, (uint8_t)exit_code(cmdline));
	power_off();
	for (;;) __asm__ volatile("cli; hlt");
}

__attribute__((naked, noreturn)) void _start(void) {
	__asm__ volatile(
		"mov $stack_top, %esp\n"
		"push %ebx\n"
		"push %eax\n"
		"call kmain\n"
		"1: cli; hlt; jmp 1b\n");
}

static uint8_t stack[8192] __attribute__((aligned(16), used));
__asm__(".globl stack_top\n.set stack_top, stack + 8192\n");
