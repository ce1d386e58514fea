#include "emulator.hpp"

#include <dlfcn.h>
#include <glob.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xbyak/xbyak.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

namespace sparq::test::emulator {
namespace {

// ---- bochscpu's C interface (the parts used), as bochscpu-python 0.4.0 ships it ----------------
// The State block was laid out by probing the 0.4.0 module (set registers, read the state back):
// it is the C order of bochscpu's fields, with 16 bytes per x87 register. load() checks the reset
// values at these offsets before anything runs.
struct Seg {
  bool present;
  uint16_t selector;
  uint64_t base;
  uint32_t limit;
  uint16_t attr;
};
struct GlobalSeg {
  uint64_t base;
  uint16_t limit;
};
struct Zmm {
  uint64_t q[8];
};
struct State {
  uint64_t bochscpu_seed;
  uint64_t rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15;
  uint64_t rip, rflags;
  Seg es, cs, ss, ds, fs, gs, ldtr, tr;
  GlobalSeg gdtr, idtr;
  uint32_t cr0;
  uint64_t cr2, cr3;
  uint32_t cr4;
  uint64_t cr8;
  uint64_t dr0, dr1, dr2, dr3;
  uint32_t dr6, dr7;
  uint32_t xcr0;
  Zmm zmm[32];
  uint16_t fpcw, fpsw, fptw, fpop;
  uint64_t fpst[16];
  uint32_t mxcsr, mxcsr_mask;
  uint64_t tsc;
  uint32_t efer;
  uint64_t kernel_gs_base, apic_base, pat;
  uint64_t sysenter_cs, sysenter_eip, sysenter_esp, star, lstar, cstar, sfmask, tsc_aux;
};
static_assert(offsetof(State, rip) == 136 && offsetof(State, es) == 152);
static_assert(offsetof(State, gdtr) == 344 && offsetof(State, cr0) == 376);
static_assert(offsetof(State, cr3) == 392 && offsetof(State, dr6) == 448);
static_assert(offsetof(State, xcr0) == 456 && offsetof(State, zmm) == 464);
static_assert(offsetof(State, mxcsr) == 2648 && offsetof(State, efer) == 2664);
static_assert(offsetof(State, apic_base) == 2680 && sizeof(State) == 2760);

// bochscpu_hooks_t: a context pointer passed to every hook, then the hooks (null: none).
struct Hooks {
  void* ctx = nullptr;
  void* before_exception[9] = {};  // reset, hlt, mwait, 4 branch kinds, opcode, interrupt
  void (*exception)(void* ctx, uint32_t cpu, uint32_t vector, uint32_t error_code) = nullptr;
  void* after_exception[15] = {};  // hw_interrupt .. vmexit
};
static_assert(sizeof(Hooks) == 26 * sizeof(void*));

struct Api {
  void* (*cpu_new)(uint32_t);
  void (*cpu_run)(void*, Hooks**);
  void (*cpu_stop)(void*);
  void (*cpu_state)(void*, State*);
  void (*cpu_set_state)(void*, const State*);
  uint64_t (*rip)(void*);
  uint64_t (*rsp)(void*);
  uint64_t (*rbx)(void*);
  uint64_t (*rbp)(void*);
  uint64_t (*r12)(void*);
  uint64_t (*r13)(void*);
  uint64_t (*r14)(void*);
  uint64_t (*r15)(void*);
  uint64_t (*cr2)(void*);
  void (*page_insert)(uint64_t gpa, uint8_t* hva);
  void (*page_remove)(uint64_t gpa);
  void (*missing_page)(void (*)(uint64_t gpa));
  void (*flush_icaches)();  // Bochs' flushICaches(): decoded code is cached by physical page
  void* (*get_param_enum)(const char*);
  void (*param_enum_set)(void* self, long value);  // bx_param_enum_c::set(Bit64s)
};

constexpr uint64_t kPage = 4096;
// In the upper half, whose PML4 entries are not present: fetching it faults.
constexpr uint64_t kSentinel = 0xffff'8000'0000'1000ull;
constexpr uint64_t kStackBytes = 1 << 20;
constexpr uint64_t kCalleeSaved = 0x5a5a'0000'0000'0000ull;
constexpr int kDefaultModel = 30;  // sapphire_rapids in Bochs 3.0's CPU database order

std::string hex(uint64_t v) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%" PRIx64, v);
  return b;
}

const char* vector_name(uint32_t v) {
  switch (v) {
    case 0:
      return "#DE (divide error)";
    case 1:
      return "#DB (debug)";
    case 3:
      return "#BP (breakpoint)";
    case 4:
      return "#OF (overflow)";
    case 5:
      return "#BR (bound range)";
    case 6:
      return "#UD (invalid opcode: an instruction the emulated CPU does not implement or "
             "an encoding no CPU has; the wheel's Bochs has no AMX)";
    case 7:
      return "#NM (device not available)";
    case 8:
      return "#DF (double fault)";
    case 10:
      return "#TS (invalid TSS)";
    case 11:
      return "#NP (segment not present)";
    case 12:
      return "#SS (stack fault)";
    case 13:
      return "#GP (general protection: e.g. a non-canonical address or a misaligned "
             "aligned-move operand)";
    case 14:
      return "#PF (page fault)";
    case 16:
      return "#MF (x87 floating point)";
    case 17:
      return "#AC (alignment check)";
    case 18:
      return "#MC (machine check)";
    case 19:
      return "#XM (SIMD floating-point exception)";
    default:
      return "an exception";
  }
}

// Which host address ranges are mapped readable: the guest may only be given those pages.
class HostMaps {
 public:
  bool readable(uint64_t page) {
    if (find(page)) return true;
    reload();
    return find(page);
  }

 private:
  struct Range {
    uint64_t begin, end;
  };
  bool find(uint64_t page) const {
    auto it = std::upper_bound(ranges_.begin(), ranges_.end(), page,
                               [](uint64_t p, const Range& r) { return p < r.begin; });
    if (it == ranges_.begin()) return false;
    --it;
    return page >= it->begin && page + kPage <= it->end;
  }
  void reload() {
    ranges_.clear();
    FILE* f = std::fopen("/proc/self/maps", "r");
    if (!f) return;
    char line[512];
    while (std::fgets(line, sizeof line, f)) {
      unsigned long long b = 0, e = 0;
      char perms[8] = {};
      if (std::sscanf(line, "%llx-%llx %7s", &b, &e, perms) == 3 && perms[0] == 'r')
        ranges_.push_back({b, e});
    }
    std::fclose(f);
    std::sort(ranges_.begin(), ranges_.end(),
              [](const Range& a, const Range& b) { return a.begin < b.begin; });
  }
  std::vector<Range> ranges_;
};

// cpuid / xgetbv results, written by a small program run under emulation.
struct CpuidOut {
  uint32_t leaf7_ebx, leaf7_ecx, leaf7_edx, leaf7_1_eax, leaf1_ecx, xcr0;
};

class CpuidProgram : public Xbyak::CodeGenerator {
 public:
  CpuidProgram() : Xbyak::CodeGenerator(4096) {
    push(rbx);
    mov(r8, rdi);
    mov(eax, 7);
    xor_(ecx, ecx);
    cpuid();
    mov(dword[r8], ebx);
    mov(dword[r8 + 4], ecx);
    mov(dword[r8 + 8], edx);
    mov(eax, 7);
    mov(ecx, 1);
    cpuid();
    mov(dword[r8 + 12], eax);
    mov(eax, 1);
    cpuid();
    mov(dword[r8 + 16], ecx);
    xor_(ecx, ecx);
    xgetbv();
    mov(dword[r8 + 20], eax);
    pop(rbx);
    ret();
    ready();
  }
};

class Emulator {
 public:
  static Emulator& get() {
    static Emulator* e = new Emulator();  // never destroyed: the module stays loaded
    return *e;
  }

  bool ok() const { return ok_; }
  const std::string& reason() const { return reason_; }
  const EmulatedCpu& cpu() const { return cpu_; }
  uint64_t calls() const { return calls_.load(); }

  void call(void (*fn)(const void*), const void* arg) {
    if (!ok_) throw std::logic_error("the emulator is not available: " + reason_);
    std::lock_guard<std::mutex> lock(mutex_);
    run_locked(fn, arg);
    calls_.fetch_add(1);
  }

 private:
  Emulator() {
    try {
      load();
      ok_ = true;
    } catch (const std::exception& e) {
      reason_ = e.what();
    }
  }

  static std::string module_path() {
    if (const char* so = std::getenv("SPARQ_EMULATOR_SO"); so && *so) return so;
    std::string venv;
    if (const char* v = std::getenv("SPARQ_EMULATOR_VENV"); v && *v) {
      venv = v;
    } else if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) {
      venv = std::string(x) + "/sparq/emulator-venv";
    } else if (const char* h = std::getenv("HOME"); h && *h) {
      venv = std::string(h) + "/.cache/sparq/emulator-venv";
    } else {
      throw std::runtime_error("no HOME: cannot find the emulator's cache (set SPARQ_EMULATOR_SO)");
    }
    const std::string pattern = venv + "/lib/python3*/site-packages/bochscpu/_bochscpu*.so";
    glob_t g{};
    std::string found;
    if (glob(pattern.c_str(), 0, nullptr, &g) == 0 && g.gl_pathc > 0) found = g.gl_pathv[0];
    globfree(&g);
    if (found.empty())
      throw std::runtime_error("bochscpu-python 0.4.0 is not installed in " + venv +
                               " (scripts/emulator-deps.sh installs it; ./sparq.sh test runs "
                               "that; SPARQ_EMULATOR_SO can name the module directly)");
    return found;
  }

  static std::string shim_path() {
    if (const char* s = std::getenv("SPARQ_EMULATOR_SHIM"); s && *s) return s;
#ifdef SPARQ_EMULATOR_SHIM_PATH
    return SPARQ_EMULATOR_SHIM_PATH;
#else
    throw std::runtime_error("the shim library's path is unknown (set SPARQ_EMULATOR_SHIM)");
#endif
  }

  template <class F>
  void sym(void* handle, const char* name, F& f) {
    void* p = dlsym(handle, name);
    if (!p)
      throw std::runtime_error(std::string("the emulator module lacks ") + name +
                               " (not bochscpu-python 0.4.0?)");
    f = reinterpret_cast<F>(p);
  }

  void load() {
    const std::string so = module_path();
    const std::string shim = shim_path();
    if (!dlopen(shim.c_str(), RTLD_NOW | RTLD_GLOBAL))
      throw std::runtime_error("cannot load the emulator shim " + shim + ": " + dlerror());
    // RTLD_LAZY: the Python functions the module would call are never reached.
    void* h = dlopen(so.c_str(), RTLD_LAZY | RTLD_LOCAL);
    if (!h) throw std::runtime_error("cannot load " + so + ": " + dlerror());
    sym(h, "bochscpu_cpu_new", api_.cpu_new);
    sym(h, "bochscpu_cpu_run", api_.cpu_run);
    sym(h, "bochscpu_cpu_stop", api_.cpu_stop);
    sym(h, "bochscpu_cpu_state", api_.cpu_state);
    sym(h, "bochscpu_cpu_set_state", api_.cpu_set_state);
    sym(h, "bochscpu_cpu_rip", api_.rip);
    sym(h, "bochscpu_cpu_rsp", api_.rsp);
    sym(h, "bochscpu_cpu_rbx", api_.rbx);
    sym(h, "bochscpu_cpu_rbp", api_.rbp);
    sym(h, "bochscpu_cpu_r12", api_.r12);
    sym(h, "bochscpu_cpu_r13", api_.r13);
    sym(h, "bochscpu_cpu_r14", api_.r14);
    sym(h, "bochscpu_cpu_r15", api_.r15);
    sym(h, "bochscpu_cpu_cr2", api_.cr2);
    sym(h, "bochscpu_mem_page_insert", api_.page_insert);
    sym(h, "bochscpu_mem_page_remove", api_.page_remove);
    sym(h, "bochscpu_mem_missing_page", api_.missing_page);
    sym(h, "_Z12flushICachesv", api_.flush_icaches);
    sym(h, "sim_get_param_enum", api_.get_param_enum);
    sym(h, "_ZN15bx_param_enum_c3setEl", api_.param_enum_set);

    // The CPU model must be chosen before the first CPU exists; by index (by name fails).
    int model = kDefaultModel;
    if (const char* m = std::getenv("SPARQ_EMULATOR_CPU_MODEL"); m && *m) model = std::atoi(m);
    void* param = api_.get_param_enum("cpu.model");
    if (!param) throw std::runtime_error("the emulator has no cpu.model parameter");
    api_.param_enum_set(param, model);
    cpu_.model = model == kDefaultModel ? "sapphire_rapids (Bochs cpu.model 30)"
                                        : "Bochs cpu.model " + std::to_string(model);

    current_ = this;
    api_.missing_page(&Emulator::on_missing_page);
    handle_ = api_.cpu_new(0);
    if (!handle_) throw std::runtime_error("bochscpu_cpu_new failed");

    State reset{};
    api_.cpu_state(handle_, &reset);
    if (reset.cr0 != 0x60000010u || reset.dr6 != 0xffff0ff0u || reset.mxcsr != 0x1f80u ||
        reset.apic_base != 0xfee00900u || reset.pat != 0x0007040600070406ull)
      throw std::runtime_error(
          "the emulator's CPU state block is not laid out as in bochscpu-python 0.4.0 (its "
          "reset values are not where expected): pin bochscpu-python==0.4.0");

    build_address_space();
    base_ = reset;
    State& s = base_;
    s.cr0 = 0x80010033u;  // PG WP NE ET MP PE
    s.cr4 = 0x00040620u;  // OSXSAVE OSXMMEXCPT OSFXSR PAE
    s.efer = 0x500u;      // LMA LME
    s.cr3 = kPml4Gpa;
    s.xcr0 = 0xe7u;  // x87 SSE AVX opmask ZMM_Hi256 Hi16_ZMM
    s.mxcsr = 0x1f80u;
    s.mxcsr_mask = 0xffffu;
    s.fpcw = 0x037f;
    s.rflags = 0x2;
    const Seg code{true, 0x10, 0, 0xffffffffu, 0x209b};  // 64-bit ring-0 code
    const Seg data{true, 0x18, 0, 0xffffffffu, 0xc093};
    s.cs = code;
    s.ss = s.ds = s.es = s.fs = s.gs = data;
    s.gdtr = {0, 0};
    s.idtr = {0, 0};  // no handlers: the first fault ends a run
    for (auto& z : s.zmm) z = Zmm{};

    // What the emulated CPU is: cpuid under emulation (this is also the first end-to-end run).
    CpuidProgram program;
    CpuidOut out{};
    run_locked(program.getCode<void (*)(const void*)>(), &out);
    jit::CpuFeatures& f = cpu_.features;
    f.fma = out.leaf1_ecx & (1u << 12);
    f.avx2 = out.leaf7_ebx & (1u << 5);
    f.avx512f = out.leaf7_ebx & (1u << 16);
    f.avx512bw = out.leaf7_ebx & (1u << 30);
    f.avx512vl = out.leaf7_ebx & (1u << 31);
    f.avx512_vnni = out.leaf7_ecx & (1u << 11);
    f.avx512_vbmi = out.leaf7_ecx & (1u << 1);
    f.avx512_vbmi2 = out.leaf7_ecx & (1u << 6);
    f.avx512_bf16 = out.leaf7_1_eax & (1u << 5);
    cpu_.avx512dq = out.leaf7_ebx & (1u << 17);
    cpu_.avx512_fp16 = out.leaf7_edx & (1u << 23);
    if ((out.xcr0 & 0xe7u) != 0xe7u)
      throw std::runtime_error("the emulated CPU refused XCR0 = 0xe7 (got " + hex(out.xcr0) + ")");
  }

  // Guest paging: guest virtual = host virtual (lower canonical half), 2 MiB pages. Guest
  // physical addresses cannot equal host virtual ones (the emulated CPU has fewer physical
  // address bits than a host address has), so each 1 GiB region of host addresses the code
  // touches gets a 1 GiB window of guest physical space. Only the PML4 and its PDPTs exist up
  // front; a region's page directory is made when the CPU first walks it, and each 4 KiB data page
  // is backed by the host's own page when first touched (both through the missing-page callback,
  // which the CPU waits for, so nothing is mapped before it is needed and nothing goes stale). The
  // upper half has no PML4 entries: the return sentinel lives there.
  static constexpr uint64_t kPml4Gpa = 0x1000;         // then the 256 PDPTs
  static constexpr uint64_t kPdGpa = 0x1000'0000;      // PD of 1 GiB region r at kPdGpa + r * 4 KiB
  static constexpr uint64_t kRegions = 256 * 512;      // 1 GiB regions of the lower half
  static constexpr uint64_t kWindowGpa = 0x4000'0000;  // window w at kWindowGpa + w GiB
  static constexpr uint64_t kMaxWindows = 256;         // all below 2^39 (any x86-64 CPU has that)
  static constexpr uint64_t kGiB = 1ull << 30, k2MiB = 1ull << 21;
  static constexpr uint64_t kPresentWritableUser = 0x7, kLargePage = 0x80;

  void build_address_space() {
    static_assert(kPdGpa + kRegions * kPage <= kWindowGpa);
    const size_t bytes = (1 + 256) * kPage;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap of the emulator's page tables failed");
    auto* tables = static_cast<uint64_t*>(p);
    for (uint64_t i = 0; i < 256; ++i) {
      uint64_t* pdpt = tables + (1 + i) * 512;
      tables[i] = (kPml4Gpa + (1 + i) * kPage) | kPresentWritableUser;
      for (uint64_t j = 0; j < 512; ++j)
        pdpt[j] = (kPdGpa + (i * 512 + j) * kPage) | kPresentWritableUser;
    }
    for (uint64_t i = 0; i < 1 + 256; ++i)
      api_.page_insert(kPml4Gpa + i * kPage, reinterpret_cast<uint8_t*>(tables) + i * kPage);
    region_window_.assign(kRegions, -1);
    void* st =
        mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (st == MAP_FAILED) throw std::runtime_error("mmap of the emulator's stack failed");
    stack_top_ = reinterpret_cast<uint64_t>(st) + kStackBytes;
    void* z = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (z == MAP_FAILED) throw std::runtime_error("mmap failed");
    poison_ = static_cast<uint8_t*>(z);
  }

  // The page directory of 1 GiB region `region`: 512 large pages onto that region's window.
  uint8_t* make_directory(uint64_t region) {
    if (region_window_[region] < 0) {
      if (window_region_.size() == kMaxWindows) return nullptr;
      region_window_[region] = static_cast<int32_t>(window_region_.size());
      window_region_.push_back(region);
    }
    void* p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    auto* pd = static_cast<uint64_t*>(p);
    const uint64_t window = kWindowGpa + static_cast<uint64_t>(region_window_[region]) * kGiB;
    for (uint64_t j = 0; j < 512; ++j)
      pd[j] = (window + j * k2MiB) | kPresentWritableUser | kLargePage;
    return static_cast<uint8_t*>(p);
  }

  // Called by bochscpu for a guest physical page it has no backing for (the CPU waits): a page
  // directory, or the host's own page behind a window when that page is mapped; else a scratch
  // page, and the run is stopped and reported.
  static void on_missing_page(uint64_t gpa) {
    Emulator* e = current_;
    const uint64_t page = gpa & ~(kPage - 1);
    uint64_t host = 0;
    if (page >= kPdGpa && page < kPdGpa + kRegions * kPage) {
      if (uint8_t* pd = e->make_directory((page - kPdGpa) / kPage)) {
        e->api_.page_insert(page, pd);
        return;
      }
    } else if (page >= kWindowGpa && page < kWindowGpa + e->window_region_.size() * kGiB) {
      const uint64_t window = (page - kWindowGpa) / kGiB;
      host = e->window_region_[window] * kGiB + (page - kWindowGpa) % kGiB;
      if (e->maps_.readable(host)) {
        e->api_.page_insert(page, reinterpret_cast<uint8_t*>(host));
        return;
      }
    }
    std::memset(e->poison_, 0, kPage);
    e->api_.page_insert(page, e->poison_);
    e->poisoned_.push_back(page);
    if (!e->outcome_.bad_memory) {
      e->outcome_.bad_memory = true;
      e->outcome_.bad_address = host;
      e->outcome_.rip = e->handle_ ? e->api_.rip(e->handle_) : 0;
    }
    if (e->handle_) e->api_.cpu_stop(e->handle_);
  }

  static void on_exception(void* ctx, uint32_t, uint32_t vector, uint32_t error_code) {
    Emulator* e = static_cast<Emulator*>(ctx);
    Outcome& o = e->outcome_;
    if (!o.exception) {
      o.exception = true;
      o.vector = vector;
      o.error_code = error_code;
      o.rip = e->api_.rip(e->handle_);
      o.cr2 = e->api_.cr2(e->handle_);
      o.rsp = e->api_.rsp(e->handle_);
      o.saved[0] = e->api_.rbx(e->handle_);
      o.saved[1] = e->api_.rbp(e->handle_);
      o.saved[2] = e->api_.r12(e->handle_);
      o.saved[3] = e->api_.r13(e->handle_);
      o.saved[4] = e->api_.r14(e->handle_);
      o.saved[5] = e->api_.r15(e->handle_);
    }
    e->api_.cpu_stop(e->handle_);
  }

  void run_locked(void (*fn)(const void*), const void* arg) {
    outcome_ = Outcome{};
    State s = base_;
    s.rip = reinterpret_cast<uint64_t>(fn);
    s.rdi = reinterpret_cast<uint64_t>(arg);
    auto* sp = reinterpret_cast<uint64_t*>(stack_top_ - 8);  // rsp + 8 16-byte aligned at entry
    *sp = kSentinel;
    s.rsp = reinterpret_cast<uint64_t>(sp);
    uint64_t* saved[6] = {&s.rbx, &s.rbp, &s.r12, &s.r13, &s.r14, &s.r15};
    for (int i = 0; i < 6; ++i) *saved[i] = kCalleeSaved + static_cast<uint64_t>(i);
    s.rax = s.rcx = s.rdx = s.rsi = s.r8 = s.r9 = s.r10 = s.r11 = 0xdead'beef'dead'beefull;
    api_.cpu_set_state(handle_, &s);  // also flushes the emulator's TLB
    // Bochs notices code changed only by guest writes; the host rewrites code (a new kernel where
    // a freed one was), so decoded instructions must not survive from one call to the next.
    api_.flush_icaches();
    Hooks hooks;
    hooks.ctx = this;
    hooks.exception = &Emulator::on_exception;
    Hooks* list[2] = {&hooks, nullptr};
    api_.cpu_run(handle_, list);
    for (uint64_t page : poisoned_) api_.page_remove(page);
    poisoned_.clear();
    check_outcome(reinterpret_cast<uint64_t>(fn));
  }

  void check_outcome(uint64_t entry) const {
    const Outcome& o = outcome_;
    auto where = [&](uint64_t rip) {
      std::string w = "rip " + hex(rip);
      if (rip >= entry && rip - entry < (1u << 20)) w += " (code entry + " + hex(rip - entry) + ")";
      return w;
    };
    if (o.bad_memory) {
      throw EmulationError("emulated code touched host memory that is not mapped: address " +
                           hex(o.bad_address) + ", near " + where(o.rip));
    }
    if (!o.exception) throw EmulationError("the emulator stopped without the code returning");
    const bool returned = o.vector == 14 && o.cr2 == kSentinel && o.rip == kSentinel;
    if (!returned) {
      std::string msg = std::string("emulated code raised ") + vector_name(o.vector) + " at " +
                        where(o.rip) + ", error code " + hex(o.error_code);
      if (o.vector == 14) msg += ", faulting address " + hex(o.cr2);
      throw EmulationError(msg);
    }
    if (o.rsp != stack_top_)
      throw EmulationError("emulated code returned with an unbalanced stack (rsp off by " +
                           std::to_string(static_cast<int64_t>(o.rsp - stack_top_)) + " bytes)");
    static const char* names[6] = {"rbx", "rbp", "r12", "r13", "r14", "r15"};
    for (int i = 0; i < 6; ++i)
      if (o.saved[i] != kCalleeSaved + static_cast<uint64_t>(i))
        throw EmulationError(std::string("emulated code did not preserve callee-saved ") +
                             names[i] + " (System V ABI)");
  }

  struct Outcome {
    bool exception = false;
    uint32_t vector = 0, error_code = 0;
    uint64_t rip = 0, cr2 = 0, rsp = 0;
    uint64_t saved[6] = {};
    bool bad_memory = false;
    uint64_t bad_address = 0;
  };

  static inline Emulator* current_ = nullptr;
  bool ok_ = false;
  std::string reason_;
  EmulatedCpu cpu_;
  Api api_{};
  void* handle_ = nullptr;
  State base_{};
  std::vector<int32_t> region_window_;   // per 1 GiB region: its window, or -1
  std::vector<uint64_t> window_region_;  // per window: its region
  uint64_t stack_top_ = 0;
  uint8_t* poison_ = nullptr;
  std::vector<uint64_t> poisoned_;
  HostMaps maps_;
  Outcome outcome_;
  std::mutex mutex_;
  std::atomic<uint64_t> calls_{0};
};

}  // namespace

std::string EmulatedCpu::summary() const {
  std::string s = model + ": " + features.names();
  if (avx512dq) s += " avx512dq";
  if (avx512_fp16) s += " avx512_fp16";
  return s + " (no AMX execution)";
}

bool available() { return Emulator::get().ok(); }
const std::string& unavailable_reason() { return Emulator::get().reason(); }
const EmulatedCpu& cpu() { return Emulator::get().cpu(); }
void call(void (*fn)(const void*), const void* arg) { Emulator::get().call(fn, arg); }
uint64_t call_count() { return Emulator::get().calls(); }

}  // namespace sparq::test::emulator
