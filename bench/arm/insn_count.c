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

/* Provided by QEMU when it loads the plugin. */
extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
extern void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                                 enum qemu_plugin_cb_flags flags, void *userdata);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
extern void qemu_plugin_outs(const char *string);

QEMU_PLUGIN_EXPORT int qemu_plugin_version = INSN_COUNT_API_VERSION;

static uint64_t total_insns;
static char outfile[4096];

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
    if (outfile[0]) {
        FILE *fp = fopen(outfile, "w");
        if (fp) {
            fputs(line, fp);
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
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
