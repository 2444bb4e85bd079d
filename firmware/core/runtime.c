/* The C library's few system hooks for a program with no OS: a small heap for newlib's
 * printf, and no files. TFLite-Micro itself allocates nothing (TF_LITE_STATIC_MEMORY). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

extern char __heap_start__[], __heap_end__[];
static char* g_brk = __heap_start__;

void* _sbrk(ptrdiff_t incr) {
  if (g_brk + incr > __heap_end__) {
    errno = ENOMEM;
    return (void*)-1;
  }
  char* old = g_brk;
  g_brk += incr;
  return old;
}

int _write(int fd, const char* buf, int n) { (void)fd; (void)buf; return n; }
int _read(int fd, char* buf, int n) { (void)fd; (void)buf; (void)n; return 0; }
int _close(int fd) { (void)fd; return -1; }
int _lseek(int fd, int off, int whence) { (void)fd; (void)off; (void)whence; return 0; }
int _fstat(int fd, struct stat* st) { (void)fd; st->st_mode = S_IFCHR; return 0; }
int _isatty(int fd) { (void)fd; return 1; }
int _getpid(void) { return 1; }
int _kill(int pid, int sig) { (void)pid; (void)sig; errno = EINVAL; return -1; }
void _exit(int code) { (void)code; for (;;) { } }
/* C++ pure virtual calls and the like end here rather than in newlib's abort(). */
void __cxa_pure_virtual(void) { for (;;) { } }
