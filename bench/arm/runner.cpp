// ncnn_arm_bench: load an ncnn .param/.bin, feed one input, time N inferences, print one JSON line.
//
//   ncnn_arm_bench --param M.ncnn.param --bin M.ncnn.bin [--shape 3,256,256] [--input x.f32]
//                  [--in in0] [--out out0[,out1...]] [--threads 1] [--powersave 0]
//                  [--warmup 1] [--loops 10] [--fp16 default|0|1] [--dump DIR]
//                  [--profile default|benchncnn] [--fill V] [--marks 0|1] [--layer-pass 0|1]
//
// Input: raw little-endian float32 in numpy C order (--input) or, without it, a deterministic
// fill that bench/arm.py reproduces (deterministic_input): value(i) = (hash32(i) >> 8) / 2^24
// for the flat C-order index i. Shapes are numpy order without the batch axis (C,H,W).
// --dump DIR writes every output as DIR/<name>.f32 (float32, C order, no padding).
// Timing covers extractor creation, input and extraction of every output, like benchncnn.
// On error: one JSON line {"status":"error",...} on stdout, message on stderr, exit code 1.
//
// Calibration against ncnn's benchncnn (bench/arm_counts.py):
//   --bin zeros           no weight file: every weight reads as 0, as benchncnn's empty data reader
//   --fill V              constant input V (benchncnn: 0.01) instead of the hash fill
//   --profile benchncnn   benchncnn's options: light mode, its blob/workspace pool allocators
//                         (size compare ratios 0 and 0.5), winograd/sgemm/fp16/packing on,
//                         omp dynamic off and omp threads = --threads
//   --in - / --out -      ncnn's first input / first output blob (benchncnn extracts only that)
//   --marks 1             marker syscalls (getppid with a tag, ignored by the kernel) bracket every
//                         timed inference, for the QEMU plugin to read its instruction count there
//   --layer-pass 1        before the warm-up, one inference layer by layer (file order, only layers
//                         the outputs need) with markers after each layer (see main); the JSON
//                         line gets "layers": [{"i","type","name","tops":[[w,h,d,c,elempack,elemsize]]}]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "allocator.h"
#include "cpu.h"
#include "datareader.h"
#include "mat.h"
#include "net.h"
#include "platform.h"

namespace {

struct Args
{
    std::string param, bin, input, dump, in_name = "in0", fp16 = "default", profile = "default", fill;
    std::vector<std::string> out_names;
    std::vector<int> shape;  // numpy order, no batch axis
    int threads = 1, powersave = 0, warmup = 1, loops = 10, marks = 0, layer_pass = 0;
};

// Weights of --bin zeros: every read yields zero bytes (benchncnn fills its weights the same way).
class ZeroWeights : public ncnn::DataReader
{
public:
    virtual int scan(const char*, void*) const
    {
        return 0;
    }
    virtual size_t read(void* buf, size_t size) const
    {
        memset(buf, 0, size);
        return size;
    }
};

// Marker for the QEMU plugin (bench/arm/insn_count.c): getppid ignores its arguments, so on a
// real device this costs one cheap syscall; the plugin sees the tag and records its count.
const long MARK_TAG = 0x6e636e6eL; // "ncnn"
enum { MARK_BEGIN = 1, MARK_END = 2, MARK_LAYER = 3, MARK_PASS_BEGIN = 4, MARK_PASS_END = 5, MARK_LAYER_OVERHEAD = 6 };
inline void mark(bool on, long kind, long value)
{
    if (on) syscall(SYS_getppid, MARK_TAG, kind, value);
}

std::string json_escape(const std::string& s)
{
    std::string o;
    for (size_t i = 0; i < s.size(); i++)
    {
        const unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
        {
            o += '\\';
            o += (char)c;
        }
        else if (c < 0x20)
        {
            char buf[8];
            snprintf(buf, sizeof(buf), "\\u%04x", c);
            o += buf;
        }
        else
            o += (char)c;
    }
    return o;
}

int fail(const std::string& msg)
{
    fprintf(stderr, "ncnn_arm_bench: %s\n", msg.c_str());
    printf("{\"status\":\"error\",\"error\":\"%s\"}\n", json_escape(msg).c_str());
    return 1;
}

std::vector<std::string> split(const std::string& s, char sep)
{
    std::vector<std::string> parts;
    size_t start = 0;
    while (true)
    {
        size_t pos = s.find(sep, start);
        parts.push_back(s.substr(start, pos == std::string::npos ? std::string::npos : pos - start));
        if (pos == std::string::npos) break;
        start = pos + 1;
    }
    return parts;
}

bool parse_int(const std::string& s, int& v)
{
    if (s.empty()) return false;
    char* end = 0;
    long x = strtol(s.c_str(), &end, 10);
    if (*end != '\0' || x < -1000000000L || x > 1000000000L) return false;
    v = (int)x;
    return true;
}

// Returns an error message, empty on success.
std::string parse_args(int argc, char** argv, Args& a)
{
    for (int i = 1; i < argc; i++)
    {
        std::string k = argv[i];
        if (i + 1 >= argc) return "missing value for " + k;
        std::string v = argv[++i];
        if (k == "--param") a.param = v;
        else if (k == "--bin") a.bin = v;
        else if (k == "--input") a.input = v;
        else if (k == "--dump") a.dump = v;
        else if (k == "--in") a.in_name = v;
        else if (k == "--out") a.out_names = split(v, ',');
        else if (k == "--profile")
        {
            if (v != "default" && v != "benchncnn") return "--profile must be default or benchncnn";
            a.profile = v;
        }
        else if (k == "--fill")
        {
            char* end = 0;
            strtod(v.c_str(), &end);
            if (v.empty() || *end != '\0') return "bad --fill " + v;
            a.fill = v;
        }
        else if (k == "--fp16")
        {
            if (v != "default" && v != "0" && v != "1") return "--fp16 must be default, 0 or 1";
            a.fp16 = v;
        }
        else if (k == "--shape")
        {
            a.shape.clear();
            std::vector<std::string> parts = split(v, ',');
            for (size_t j = 0; j < parts.size(); j++)
            {
                int d = 0;
                if (!parse_int(parts[j], d) || d <= 0) return "bad --shape " + v;
                a.shape.push_back(d);
            }
            if (a.shape.empty() || a.shape.size() > 4) return "--shape needs 1 to 4 dims (C,H,W order)";
        }
        else
        {
            int* dst = k == "--threads" ? &a.threads : k == "--powersave" ? &a.powersave
                       : k == "--warmup" ? &a.warmup : k == "--loops" ? &a.loops
                       : k == "--marks" ? &a.marks : k == "--layer-pass" ? &a.layer_pass : 0;
            if (!dst) return "unknown option " + k;
            if (!parse_int(v, *dst)) return "bad integer for " + k + ": " + v;
        }
    }
    if (a.param.empty() || a.bin.empty()) return "--param and --bin are required";
    if (a.out_names.empty()) a.out_names.push_back("out0");
    if (a.shape.empty())
    {
        a.shape.push_back(3);
        a.shape.push_back(256);
        a.shape.push_back(256);
    }
    if (a.threads < 1) return "--threads must be >= 1";
    if (a.powersave < 0 || a.powersave > 2) return "--powersave must be 0 (all), 1 (little) or 2 (big)";
    if (a.warmup < 0 || a.loops < 1) return "--warmup must be >= 0 and --loops >= 1";
    if (!a.input.empty() && !a.fill.empty()) return "--input and --fill exclude each other";
    return "";
}

// Same mixing as bench/arm.py:deterministic_input (murmur3 finalizer of the flat index).
inline float det_value(uint32_t i)
{
    uint32_t h = i * 2654435761u;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return (float)(h >> 8) * (1.0f / 16777216.0f);
}

ncnn::Mat make_mat(const std::vector<int>& s)
{
    switch (s.size())
    {
    case 1: return ncnn::Mat(s[0]);
    case 2: return ncnn::Mat(s[1], s[0]);
    case 3: return ncnn::Mat(s[2], s[1], s[0]);
    default: return ncnn::Mat(s[3], s[2], s[1], s[0]);
    }
}

// Copy between flat C-order float data and an ncnn Mat (channels may be padded to cstep).
void flat_to_mat(const float* src, ncnn::Mat& m)
{
    const size_t per_c = (size_t)m.w * m.h * m.d;
    for (int q = 0; q < m.c; q++)
        memcpy(m.channel(q), src + q * per_c, per_c * sizeof(float));
}

std::vector<float> mat_to_flat(const ncnn::Mat& m)
{
    const size_t per_c = (size_t)m.w * m.h * m.d;
    std::vector<float> out(per_c * m.c);
    for (int q = 0; q < m.c; q++)
        memcpy(&out[q * per_c], m.channel(q), per_c * sizeof(float));
    return out;
}

std::vector<int> mat_shape(const ncnn::Mat& m)
{
    std::vector<int> s;
    if (m.dims == 1) s.push_back(m.w);
    if (m.dims == 2) { s.push_back(m.h); s.push_back(m.w); }
    if (m.dims == 3) { s.push_back(m.c); s.push_back(m.h); s.push_back(m.w); }
    if (m.dims == 4) { s.push_back(m.c); s.push_back(m.d); s.push_back(m.h); s.push_back(m.w); }
    return s;
}

std::string ints_json(const std::vector<int>& v)
{
    std::string o = "[";
    for (size_t i = 0; i < v.size(); i++)
    {
        char buf[32];
        snprintf(buf, sizeof(buf), "%s%d", i ? "," : "", v[i]);
        o += buf;
    }
    return o + "]";
}

std::string cpu_features_json()
{
    struct F
    {
        const char* name;
        int (*fn)();
    } feats[] = {
        {"neon", ncnn::cpu_support_arm_neon},
        {"vfpv4", ncnn::cpu_support_arm_vfpv4},
        {"asimdhp", ncnn::cpu_support_arm_asimdhp},
        {"cpuid", ncnn::cpu_support_arm_cpuid},
        {"asimddp", ncnn::cpu_support_arm_asimddp},
        {"asimdfhm", ncnn::cpu_support_arm_asimdfhm},
        {"bf16", ncnn::cpu_support_arm_bf16},
        {"i8mm", ncnn::cpu_support_arm_i8mm},
        {"sve", ncnn::cpu_support_arm_sve},
        {"sve2", ncnn::cpu_support_arm_sve2},
        {"svebf16", ncnn::cpu_support_arm_svebf16},
        {"svei8mm", ncnn::cpu_support_arm_svei8mm},
        {"svef32mm", ncnn::cpu_support_arm_svef32mm},
    };
    std::string o = "{";
    for (size_t i = 0; i < sizeof(feats) / sizeof(feats[0]); i++)
    {
        char buf[64];
        snprintf(buf, sizeof(buf), "%s\"%s\":%d", i ? "," : "", feats[i].name, feats[i].fn() ? 1 : 0);
        o += buf;
    }
    return o + "}";
}

// Layers the requested outputs depend on (backwards from their producers).
std::vector<bool> needed_layers(const ncnn::Net& net, const std::vector<int>& out_blobs)
{
    const std::vector<ncnn::Blob>& blobs = net.blobs();
    const std::vector<ncnn::Layer*>& layers = net.layers();
    std::vector<bool> need(layers.size(), false);
    std::vector<int> todo = out_blobs;
    while (!todo.empty())
    {
        const int b = todo.back();
        todo.pop_back();
        const int l = b >= 0 && b < (int)blobs.size() ? blobs[b].producer : -1;
        if (l < 0 || need[l]) continue;
        need[l] = true;
        for (size_t j = 0; j < layers[l]->bottoms.size(); j++) todo.push_back(layers[l]->bottoms[j]);
    }
    return need;
}

double now_ms()
{
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

} // namespace

int main(int argc, char** argv)
{
    Args a;
    std::string err = parse_args(argc, argv, a);
    if (!err.empty()) return fail(err);

    // ncnn's default is 0 (all cores). Setting it runs an OpenMP region over all cores to pin
    // threads, which leaves idle worker threads behind: only do it when a choice was asked for.
    if (a.powersave != 0) ncnn::set_cpu_powersave(a.powersave);
    const ncnn::CpuSet& mask = ncnn::get_cpu_thread_affinity_mask(a.powersave);
    std::vector<int> mask_cpus;
    for (int i = 0; i < ncnn::get_cpu_count(); i++)
        if (mask.is_enabled(i)) mask_cpus.push_back(i);

    ncnn::UnlockedPoolAllocator blob_pool;
    ncnn::PoolAllocator workspace_pool;
    ncnn::Net net;
    if (a.profile == "benchncnn")
    {
        blob_pool.set_size_compare_ratio(0.0f);
        workspace_pool.set_size_compare_ratio(0.5f);
        net.opt.lightmode = true;
        net.opt.blob_allocator = &blob_pool;
        net.opt.workspace_allocator = &workspace_pool;
        net.opt.use_winograd_convolution = true;
        net.opt.use_sgemm_convolution = true;
        net.opt.use_int8_inference = true;
        net.opt.use_fp16_packed = true;
        net.opt.use_fp16_storage = true;
        net.opt.use_fp16_arithmetic = true;
        net.opt.use_int8_storage = true;
        net.opt.use_int8_arithmetic = true;
        net.opt.use_packing_layout = true;
        ncnn::set_omp_dynamic(0);
        ncnn::set_omp_num_threads(a.threads);
    }
    net.opt.num_threads = a.threads;
    if (a.fp16 != "default")
    {
        const bool on = a.fp16 == "1";
        net.opt.use_fp16_packed = on;
        net.opt.use_fp16_storage = on;
        net.opt.use_fp16_arithmetic = on;
    }

    const double t_load0 = now_ms();
    if (net.load_param(a.param.c_str()) != 0) return fail("load_param failed (missing file or a layer type not built in): " + a.param);
    ZeroWeights zeros;
    if ((a.bin == "zeros" ? net.load_model(zeros) : net.load_model(a.bin.c_str())) != 0) return fail("load_model failed: " + a.bin);
    const double load_ms = now_ms() - t_load0;
    if (a.in_name == "-")
    {
        if (net.input_names().empty()) return fail("--in -: the model has no input");
        a.in_name = net.input_names()[0];
    }
    if (a.out_names.size() == 1 && a.out_names[0] == "-")
    {
        if (net.output_names().empty()) return fail("--out -: the model has no output");
        a.out_names[0] = net.output_names()[0];
    }

    ncnn::Mat in = make_mat(a.shape);
    if (in.empty()) return fail("could not allocate the input");
    const size_t numel = (size_t)in.w * in.h * in.d * in.c;
    std::vector<float> flat(numel);
    if (!a.input.empty())
    {
        FILE* fp = fopen(a.input.c_str(), "rb");
        if (!fp) return fail("cannot open --input " + a.input);
        size_t got = fread(flat.data(), sizeof(float), numel, fp);
        int extra = fgetc(fp);
        fclose(fp);
        if (got != numel || extra != EOF) return fail("--input size does not match --shape " + ints_json(a.shape));
    }
    else if (!a.fill.empty())
    {
        std::fill(flat.begin(), flat.end(), (float)strtod(a.fill.c_str(), 0));
    }
    else
    {
        for (size_t i = 0; i < numel; i++) flat[i] = det_value((uint32_t)i);
    }
    flat_to_mat(flat.data(), in);

    std::vector<ncnn::Mat> outs(a.out_names.size());
    // benchncnn ignores extract's return code: a detection layer that finds nothing (zero weights)
    // returns an error with an empty output. Only then, and only in that profile, is it accepted.
    const bool lenient = a.profile == "benchncnn";

    // Layer pass (before warm-up; it fills the pools like a warm-up inference): layers in file
    // order, only those the outputs need, each layer's tops extracted raw (type 1: no unpacking or
    // fp16 cast) and released at once, so light mode still recycles blobs in place as in a whole-net
    // run. After each layer a marker, then the same tops extracted again (nothing left to compute)
    // and another marker: the second span is the extract call's own cost, to subtract.
    std::string layers_json = "[";
    if (a.layer_pass)
    {
        std::vector<int> out_blobs;
        for (size_t k = 0; k < a.out_names.size(); k++)
            for (size_t b = 0; b < net.blobs().size(); b++)
                if (net.blobs()[b].name == a.out_names[k]) out_blobs.push_back((int)b);
        const std::vector<bool> need = needed_layers(net, out_blobs);
        const std::vector<ncnn::Layer*>& layers = net.layers();
        std::vector<int> done, top_dims; // per layer: index; per top: w, h, d, c, elempack, elemsize
        mark(a.marks, MARK_PASS_BEGIN, 0);
        {
            ncnn::Extractor ex = net.create_extractor();
            if (ex.input(a.in_name.c_str(), in) != 0) return fail("no input blob named " + a.in_name);
            for (size_t l = 0; l < layers.size(); l++)
            {
                if (!need[l] || layers[l]->type == "Input") continue;
                for (int pass = 0; pass < 2; pass++)
                {
                    for (size_t t = 0; t < layers[l]->tops.size(); t++)
                    {
                        ncnn::Mat m;
                        if (ex.extract(layers[l]->tops[t], m, 1) != 0 && !(lenient && m.empty()))
                            return fail("layer pass: cannot extract a top of " + layers[l]->name);
                        if (pass == 0)
                        {
                            const int dims[6] = {m.w, m.h, m.d, m.c, m.elempack, (int)m.elemsize};
                            top_dims.insert(top_dims.end(), dims, dims + 6);
                        }
                    }
                    mark(a.marks, pass == 0 ? MARK_LAYER : MARK_LAYER_OVERHEAD, (long)l);
                }
                done.push_back((int)l);
            }
            for (size_t k = 0; k < a.out_names.size(); k++)
            {
                if (ex.extract(a.out_names[k].c_str(), outs[k]) != 0 && !(lenient && outs[k].empty()))
                    return fail("cannot extract output blob " + a.out_names[k]);
            }
        }
        mark(a.marks, MARK_PASS_END, 0);
        size_t pos = 0;
        for (size_t j = 0; j < done.size(); j++)
        {
            const ncnn::Layer* layer = layers[done[j]];
            layers_json += std::string(j ? "," : "") + "{\"i\":" + std::to_string(done[j]) + ",\"type\":\""
                           + json_escape(layer->type) + "\",\"name\":\"" + json_escape(layer->name) + "\",\"tops\":[";
            for (size_t t = 0; t < layer->tops.size(); t++, pos += 6)
            {
                layers_json += t ? ",[" : "[";
                for (int q = 0; q < 6; q++) layers_json += (q ? "," : "") + std::to_string(top_dims[pos + q]);
                layers_json += "]";
            }
            layers_json += "]}";
        }
    }
    layers_json += "]";

    std::vector<double> times;
    for (int it = 0; it < a.warmup + a.loops; it++)
    {
        const bool timed = it >= a.warmup;
        mark(a.marks && timed, MARK_BEGIN, it);
        const double t0 = now_ms();
        {
            ncnn::Extractor ex = net.create_extractor();
            if (ex.input(a.in_name.c_str(), in) != 0) return fail("no input blob named " + a.in_name);
            for (size_t k = 0; k < a.out_names.size(); k++)
            {
                if (ex.extract(a.out_names[k].c_str(), outs[k]) != 0 && !(lenient && outs[k].empty()))
                    return fail("cannot extract output blob " + a.out_names[k]);
            }
        }
        const double t1 = now_ms();
        mark(a.marks && timed, MARK_END, it);
        if (timed) times.push_back(t1 - t0);
    }
    std::vector<double> sorted = times;
    std::sort(sorted.begin(), sorted.end());
    const size_t n = sorted.size();
    const double median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    double mean = 0;
    for (size_t i = 0; i < n; i++) mean += sorted[i] / n;

    std::string outs_json = "[";
    for (size_t k = 0; k < outs.size(); k++)
    {
        std::vector<float> o = mat_to_flat(outs[k]);
        double sum = 0, asum = 0;
        for (size_t i = 0; i < o.size(); i++)
        {
            sum += o[i];
            asum += fabs(o[i]);
        }
        if (!a.dump.empty())
        {
            std::string path = a.dump + "/" + a.out_names[k] + ".f32";
            FILE* fp = fopen(path.c_str(), "wb");
            if (!fp || fwrite(o.data(), sizeof(float), o.size(), fp) != o.size())
            {
                if (fp) fclose(fp);
                return fail("cannot write " + path);
            }
            fclose(fp);
        }
        char buf[160];
        snprintf(buf, sizeof(buf), "\",\"shape\":%s,\"sum\":%.9g,\"abs_sum\":%.9g}",
                 ints_json(mat_shape(outs[k])).c_str(), sum, asum);
        outs_json += std::string(k ? "," : "") + "{\"name\":\"" + json_escape(a.out_names[k]) + buf;
    }
    outs_json += "]";

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);

    printf("{\"status\":\"ok\",\"ncnn_version\":\"%s\",\"param\":\"%s\",\"input_shape\":%s,\"input\":\"%s\","
           "\"threads\":%d,\"powersave\":%d,\"cpu_mask\":%s,\"cpu_count\":%d,\"big_cpu_count\":%d,"
           "\"little_cpu_count\":%d,\"fp16\":\"%s\",\"warmup\":%d,\"loops\":%d,\"load_ms\":%.4f,"
           "\"min_ms\":%.4f,\"median_ms\":%.4f,\"mean_ms\":%.4f,\"max_ms\":%.4f,\"max_rss_kb\":%ld,"
           "\"arm_features\":%s,\"outputs\":%s,\"layers\":%s}\n",
           NCNN_VERSION_STRING, json_escape(a.param).c_str(), ints_json(a.shape).c_str(),
           a.input.empty() ? "deterministic" : "file", a.threads, a.powersave, ints_json(mask_cpus).c_str(),
           ncnn::get_cpu_count(), ncnn::get_big_cpu_count(), ncnn::get_little_cpu_count(), a.fp16.c_str(),
           a.warmup, a.loops, load_ms, sorted[0], median, mean, sorted[n - 1], (long)ru.ru_maxrss,
           cpu_features_json().c_str(), outs_json.c_str(), layers_json.c_str());
    return 0;
}
