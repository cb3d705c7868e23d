/*
 * insn_count: QEMU TCG plugin counting executed guest instructions (qemu-user).
 *
 *   qemu-aarch64 -cpu cortex-a72 -plugin ./libinsn_count.so,outfile=/tmp/n.txt ./prog ...
 *
 * At translation time every translation block gets an execution callback whose user data is
 * the block's instruction count; the callback adds it to one atomic 64-bit total (guest threads
 * run on several host threads). At exit the total is written as "insns <N>\n" to the file given by
 * the outfile= argument, or to QEMU's log (stderr) without it.
 *
 * Markers: a guest getppid syscall whose first argument is the tag 0x6e636e6e ("ncnn") is recorded
 * with its second and third arguments (kind, value) and the running total at that point, and
 * written after the total as "mark <kind> <value> <insns>" lines (bench/arm/runner.cpp --marks 1).
 * The total at a marker includes the whole translation block ending in the syscall; differences
 * between markers are therefore exact instruction counts of the code between them.
 *
 * No QEMU header is needed: the few plugin API functions used here are declared below with the
 * signatures documented for QEMU's plugin API (stable from QEMU 4.2 on). The only thing that varies
 * across QEMU releases is the API version the plugin must announce: 1 up to QEMU 8.x and 2 from
 * QEMU 9.0 (which raised the minimum to 2). bench/arm.py passes -DINSN_COUNT_API_VERSION=...
 * according to `qemu-aarch64 --version`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef INSN_COUNT_API_VERSION
#define INSN_COUNT_API_VERSION 1
#endif

#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* opaque here: never dereferenced */
struct qemu_plugin_tb;

enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS = 0 };

typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num,
                                              uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                                              uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8);

/* Provided by QEMU when it loads the plugin. */
extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
extern void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                                 enum qemu_plugin_cb_flags flags, void *userdata);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
extern void qemu_plugin_outs(const char *string);
extern void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_syscall_cb_t cb);

QEMU_PLUGIN_EXPORT int qemu_plugin_version = INSN_COUNT_API_VERSION;

static uint64_t total_insns;
static char outfile[4096];

#define MARK_SYSCALL 173 /* getppid on aarch64 */
#define MARK_TAG 0x6e636e6eULL
#define MAX_MARKS 65536
struct mark { uint64_t kind, value, insns; };
static struct mark marks[MAX_MARKS];
static uint64_t n_marks; /* may exceed MAX_MARKS: the extra ones are counted, not stored */

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num, uint64_t a1, uint64_t a2,
                       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    (void)id; (void)vcpu_index; (void)a4; (void)a5; (void)a6; (void)a7; (void)a8;
    if (num != MARK_SYSCALL || a1 != MARK_TAG)
        return;
    uint64_t i = __atomic_fetch_add(&n_marks, 1, __ATOMIC_RELAXED);
    if (i < MAX_MARKS) {
        marks[i].kind = a2;
        marks[i].value = a3;
        marks[i].insns = __atomic_load_n(&total_insns, __ATOMIC_RELAXED);
    }
}

static void tb_exec(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    __atomic_fetch_add(&total_insns, (uint64_t)(uintptr_t)userdata, __ATOMIC_RELAXED);
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)n);
}

static void at_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    char line[64];
    snprintf(line, sizeof(line), "insns %llu\n",
             (unsigned long long)__atomic_load_n(&total_insns, __ATOMIC_RELAXED));
    uint64_t stored = n_marks < MAX_MARKS ? n_marks : MAX_MARKS;
    if (outfile[0]) {
        FILE *fp = fopen(outfile, "w");
        if (fp) {
            fputs(line, fp);
            for (uint64_t i = 0; i < stored; i++)
                fprintf(fp, "mark %llu %llu %llu\n", (unsigned long long)marks[i].kind,
                        (unsigned long long)marks[i].value, (unsigned long long)marks[i].insns);
            if (n_marks > stored)
                fprintf(fp, "marks_dropped %llu\n", (unsigned long long)(n_marks - stored));
            fclose(fp);
            return;
        }
    }
    qemu_plugin_outs(line);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "outfile=", 8) == 0) {
            if (strlen(argv[i] + 8) >= sizeof(outfile))
                return -1;
            strcpy(outfile, argv[i] + 8);
        } else {
            return -1; /* unknown argument: refuse to load rather than count silently wrong */
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
