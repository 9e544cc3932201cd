/* npy.h — NumPy .npy datasets (Content-Type application/x-npy): the header reader, its
 * checks, and the conversion to and from api_dataset. Pure (no I/O), fuzz-friendly: every
 * size is checked in 64 bits against the buffer before it is read.
 *
 * Accepted: format versions 1.0, 2.0 and 3.0; a 2-D array in C order ('fortran_order': False)
 * of little-endian float64 ('<f8') or float32 ('<f4'); the header dict holding exactly the
 * keys 'descr', 'fortran_order' and 'shape'; a body of exactly rows × columns × item size
 * bytes after the header. Labels are one column of the array: the first (?label=first, the
 * default, as in CSV) or the last (?label=last), integers 0..65535. Or ?targets=K: the last K
 * columns are the target matrix Y (no labels). A download (api_npy_from_dataset) writes a
 * version 1.0 '<f8' array in the same layout: the label first, or Y in the last `outputs`
 * columns.
 */
#ifndef BACKPROPD_API_NPY_H
#define BACKPROPD_API_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "api/api.h"

typedef struct {
    int64_t rows, cols;
    int item;          /* bytes per value: 8 ('<f8') or 4 ('<f4') */
    size_t offset;     /* where the values start */
} api_npy_header;

/* Reads and checks the header of the .npy bytes buf[len] (and that the body holds exactly
 * rows × cols values). 0, or -1 with a 400 naming what is wrong ("npy header: 'shape' must be
 * 2-D (rows, columns), found 1 dimension"). */
int api_npy_header_parse(api_npy_header *h, const void *buf, size_t len, api_error *err);

typedef enum { API_NPY_LABEL_FIRST, API_NPY_LABEL_LAST, API_NPY_TARGETS } api_npy_layout;

/* The dataset in buf[len]: layout FIRST/LAST takes that column as labels; TARGETS takes the
 * last `targets` columns as Y. Values must be finite (400 naming row and column). */
int api_dataset_parse_npy(api_dataset *out, const void *buf, size_t len, api_npy_layout layout,
                          int64_t targets, api_error *err);

/* new: the .npy bytes (into *len) of d: [label, X] per row when d->labels, else [X, Y]. NULL
 * when out of memory or too large. */
void *api_npy_from_dataset(const api_dataset *d, size_t *len);

#endif
