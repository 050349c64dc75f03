/* CPUID as an AVX2-only x86-64 CPU would answer it, for binaries patched by
 * benchmarks/avx2/emulate.py.
 *
 * The patcher replaces each `cpuid` instruction (0f a2) in copies of ONNX Runtime's and
 * OpenVINO's libraries with `int3; nop` (cc 90). This library, loaded with LD_PRELOAD,
 * handles the SIGTRAP: it runs the real CPUID for the requested leaf, clears the AVX-512,
 * AVX-512-BF16/FP16, AVX-VNNI and AMX feature bits, and resumes after the nop. The
 * libraries' own dispatchers (MLAS, oneDNN, OpenVINO's CPU plugin) then choose their
 * AVX2/FMA kernels, which the real hardware executes at full speed.
 *
 * Set KB_CPUID_LOG=1 to print every emulated leaf (proof that the patched sites ran).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

static int log_calls;
static volatile long emulated;

static void real_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

static void mask(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    if (leaf == 7 && sub == 0) {
        /* EBX: AVX512F 16, DQ 17, IFMA 21, PF 26, ER 27, CD 28, BW 30, VL 31 */
        r[1] &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31));
        /* ECX: VBMI 1, VBMI2 6, VNNI 11, BITALG 12, VPOPCNTDQ 14 */
        r[2] &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
        /* EDX: 4VNNIW 2, 4FMAPS 3, VP2INTERSECT 8, AMX-BF16 22, AVX512-FP16 23, AMX-TILE 24, AMX-INT8 25 */
        r[3] &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
    } else if (leaf == 7 && sub == 1) {
        /* EAX: AVX-VNNI 4, AVX512-BF16 5, AMX-FP16 21, AVX-IFMA 23; EDX: AVX-VNNI-INT8 4, AVX-NE-CONVERT 5 */
        r[0] &= ~((1u << 4) | (1u << 5) | (1u << 21) | (1u << 23));
        r[3] &= ~((1u << 4) | (1u << 5));
    }
}

static void on_trap(int sig, siginfo_t *info, void *ctx) {
    (void)sig;
    (void)info;
    greg_t *g = ((ucontext_t *)ctx)->uc_mcontext.gregs;
    const unsigned char *at = (const unsigned char *)g[REG_RIP]; /* just past the int3 */
    if (at[-1] != 0xcc || at[0] != 0x90) {
        signal(SIGTRAP, SIG_DFL); /* not ours: let it kill the process as it would have */
        return;
    }
    uint32_t leaf = (uint32_t)g[REG_RAX], sub = (uint32_t)g[REG_RCX], r[4];
    real_cpuid(leaf, sub, r);
    mask(leaf, sub, r);
    g[REG_RAX] = r[0];
    g[REG_RBX] = r[1];
    g[REG_RCX] = r[2];
    g[REG_RDX] = r[3];
    g[REG_RIP] += 1; /* skip the nop */
    emulated++;
    if (log_calls) {
        char line[96];
        int n = snprintf(line, sizeof line, "cpuid-avx2: leaf %#x.%u -> ebx %#x ecx %#x eax %#x\n", leaf, sub, r[1], r[2], r[0]);
        if (n > 0) fwrite(line, 1, (size_t)n, stderr);
    }
}

__attribute__((constructor)) static void install(void) {
    const char *v = getenv("KB_CPUID_LOG");
    log_calls = v && *v == '1';
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_trap;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTRAP, &sa, NULL);
}

__attribute__((destructor)) static void report(void) {
    if (log_calls) fprintf(stderr, "cpuid-avx2: %ld CPUID calls emulated\n", emulated);
}
