//! Give back the memory the create needed and supervision does not.
//!
//! A shim lives as long as its container, and a host runs many. Creating a container
//! touches megabytes (libcontainer, libseccomp, serde for the spec) that the poll loop
//! never uses again. Once the container runs and the shim is idle, it:
//! - returns free heap to the kernel (`malloc_trim`);
//! - drops its page-table references to the read-only, never-written segments of the
//!   executable and its libraries (`MADV_DONTNEED` on each `PT_LOAD` without `PF_W`,
//!   found with `dl_iterate_phdr`). Those pages are clean file pages: the page cache
//!   keeps them for other shims, and the loop faults back in the few it runs. Writable
//!   segments, including RELRO (relocated data, an anonymous copy), are left alone;
//! - drops stack pages below the current frame, which only the create's deep call
//!   chains used.
//!
//! The executable is linked without PIE (see build.rs) so that its relocated read-only
//! data (RELRO, ~440 KiB of vtables and tables in a Rust binary) stays clean file pages
//! shared by all shims instead of an anonymous copy in each one.
//!
//! This runs once, after the first idle moment following the start, so it costs the
//! start path nothing and short-lived containers never pay for it.

use std::ffi::CStr;

const PAGE: usize = 4096;

fn page_down(a: usize) -> usize {
    a & !(PAGE - 1)
}

fn page_up(a: usize) -> usize {
    (a + PAGE - 1) & !(PAGE - 1)
}

unsafe extern "C" fn drop_readonly_segments(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    _data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: the loader passes a valid dl_phdr_info for the duration of the callback.
    let info = unsafe { &*info };
    if !info.dlpi_name.is_null() {
        // SAFETY: dlpi_name is a NUL-terminated string owned by the loader.
        let name = unsafe { CStr::from_ptr(info.dlpi_name) };
        // The vDSO is a special mapping, not file pages.
        if name.to_bytes().windows(4).any(|w| w == b"vdso") {
            return 0;
        }
    }
    for i in 0..usize::from(info.dlpi_phnum) {
        // SAFETY: dlpi_phdr points to dlpi_phnum program headers.
        let ph = unsafe { &*info.dlpi_phdr.add(i) };
        if ph.p_type != libc::PT_LOAD || ph.p_flags & libc::PF_W != 0 {
            continue;
        }
        let start = page_up(info.dlpi_addr as usize + ph.p_vaddr as usize);
        let end = page_down(info.dlpi_addr as usize + (ph.p_vaddr + ph.p_memsz) as usize);
        if end > start {
            // SAFETY: the range lies inside a read-only, never-written file mapping of
            // a loaded object; dropping its pages only forces them to be re-read from
            // the page cache on next use.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        }
    }
    0
}

/// Releases the stack below the current frame: the create's deep calls touched it.
#[inline(never)]
fn drop_unused_stack() {
    let marker = 0u8;
    let here = std::ptr::addr_of!(marker) as usize;
    // Keep a margin below the current frame for the calls made from here on.
    let top = page_down(here.saturating_sub(16 * 1024));
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    let Some(line) = maps.lines().find(|l| l.ends_with("[stack]")) else {
        return;
    };
    let Some((start, _)) = line
        .split(' ')
        .next()
        .and_then(|r| r.split_once('-'))
        .and_then(|(a, b)| {
            Some((
                usize::from_str_radix(a, 16).ok()?,
                usize::from_str_radix(b, 16).ok()?,
            ))
        })
    else {
        return;
    };
    if top > start {
        // SAFETY: [start, top) is the part of this thread's stack mapping more than
        // 16 KiB below the live frame; nothing refers to it, and a later touch faults in
        // a zero page.
        unsafe { libc::madvise(start as *mut libc::c_void, top - start, libc::MADV_DONTNEED) };
    }
}

/// Gives back what the create used; see the module docs.
pub(crate) fn release_startup_memory() {
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe { libc::malloc_trim(0) };
    // SAFETY: the callback only reads loader-provided structures and calls madvise.
    unsafe { libc::dl_iterate_phdr(Some(drop_readonly_segments), std::ptr::null_mut()) };
    drop_unused_stack();
}
