// Loaded (RTLD_GLOBAL) before bochscpu-python's extension module so that its CPU library loads
// from C++ without a Python interpreter on a glibc older than 2.38:
//  - __isoc23_strtoull / __isoc23_sscanf: glibc 2.38's names for what C23 changed (the 0b prefix),
//    forwarded to the older functions (Bochs parses only decimal and hex parameters);
//  - the Python objects the module's pybind11 code takes the address of at load time (data
//    relocations are resolved at dlopen even with RTLD_LAZY). Nothing here is ever used: the
//    module's Python entry point is never called, only bochscpu's C functions are. Functions it
//    calls stay unresolved (RTLD_LAZY) and are never reached.
// The list is the one bochscpu-python 0.4.0's wheel needs (readelf -r: the non-PLT Py* symbols).
#include <cstdarg>
#include <cstdio>
#include <cstdlib>

extern "C" {

__attribute__((visibility("default"))) unsigned long long __isoc23_strtoull(const char* s,
                                                                            char** end, int base) {
  return std::strtoull(s, end, base);
}

__attribute__((visibility("default"))) int __isoc23_sscanf(const char* s, const char* format, ...) {
  std::va_list args;
  va_start(args, format);
  const int n = std::vsscanf(s, format, args);
  va_end(args);
  return n;
}

#define SPARQ_PY_PLACEHOLDER(name) __attribute__((visibility("default"))) char name[256];
SPARQ_PY_PLACEHOLDER(PyBaseObject_Type)
SPARQ_PY_PLACEHOLDER(PyBytes_Type)
SPARQ_PY_PLACEHOLDER(PyExc_AttributeError)
SPARQ_PY_PLACEHOLDER(PyExc_BufferError)
SPARQ_PY_PLACEHOLDER(PyExc_ImportError)
SPARQ_PY_PLACEHOLDER(PyExc_IndexError)
SPARQ_PY_PLACEHOLDER(PyExc_KeyError)
SPARQ_PY_PLACEHOLDER(PyExc_MemoryError)
SPARQ_PY_PLACEHOLDER(PyExc_OverflowError)
SPARQ_PY_PLACEHOLDER(PyExc_RuntimeError)
SPARQ_PY_PLACEHOLDER(PyExc_RuntimeWarning)
SPARQ_PY_PLACEHOLDER(PyExc_StopIteration)
SPARQ_PY_PLACEHOLDER(PyExc_SystemError)
SPARQ_PY_PLACEHOLDER(PyExc_TypeError)
SPARQ_PY_PLACEHOLDER(PyExc_ValueError)
SPARQ_PY_PLACEHOLDER(PyFloat_Type)
SPARQ_PY_PLACEHOLDER(PyList_Type)
SPARQ_PY_PLACEHOLDER(PyLong_Type)
SPARQ_PY_PLACEHOLDER(PyModule_Type)
SPARQ_PY_PLACEHOLDER(PyObject_GenericGetDict)
SPARQ_PY_PLACEHOLDER(PyObject_GenericSetDict)
SPARQ_PY_PLACEHOLDER(PyObject_Vectorcall)
SPARQ_PY_PLACEHOLDER(PyObject_VectorcallMethod)
SPARQ_PY_PLACEHOLDER(PyProperty_Type)
SPARQ_PY_PLACEHOLDER(PyTuple_Type)
SPARQ_PY_PLACEHOLDER(PyType_GenericNew)
SPARQ_PY_PLACEHOLDER(PyType_Type)
SPARQ_PY_PLACEHOLDER(PyUnicode_Type)
SPARQ_PY_PLACEHOLDER(PyVectorcall_Call)
SPARQ_PY_PLACEHOLDER(Py_GenericAlias)
SPARQ_PY_PLACEHOLDER(Py_GenericAliasType)
SPARQ_PY_PLACEHOLDER(_PyWeakref_RefType)
SPARQ_PY_PLACEHOLDER(_Py_FalseStruct)
SPARQ_PY_PLACEHOLDER(_Py_NoneStruct)
SPARQ_PY_PLACEHOLDER(_Py_NotImplementedStruct)
SPARQ_PY_PLACEHOLDER(_Py_TrueStruct)

}  // extern "C"
