/* http_hostile.c — what a hostile or broken client sends, answered at once and safely, over
 * real HTTP against the real binary: framing that a proxy could read otherwise (a
 * Transfer-Encoding other than chunked, Content-Length headers that disagree, HTTP/1.1
 * without Host), HEAD on an event stream, and event streams whose clients went away giving
 * their connection slots back at once rather than at the next heartbeat.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/harness.h"

/* The status of a raw answer ("HTTP/1.1 NNN"), or 0. */
static int raw_status(const char *got)
{
    return got && strncmp(got, "HTTP/1.", 7) == 0 ? atoi(got + 9) : 0;
}

/* Sends request on a raw connection and expects status with a problem+json naming needle,
 * answered well within the 5 s the exchange waits (never left to time out). */
static void expect_raw_problem(const srv *s, const char *request, int status, const char *needle)
{
    double t0 = test_now_ms();
    char *got = raw_exchange(s->port, request);
    double ms = test_now_ms() - t0;
    cr_assert(got, "no connection");
    cr_expect_eq(raw_status(got), status, "answered: %.300s", got);
    cr_expect(strstr(got, "application/problem+json"), "not problem+json: %.300s", got);
    cr_expect(strstr(got, needle), "no '%s' in: %.400s", needle, got);
    cr_expect(ms < 4000, "answered after %.0f ms", ms);
    free(got);
}

Test(http_hostile, transfer_encoding_other_than_chunked_is_501_at_once)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    expect_raw_problem(&s, "POST /v1/cost HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n"
                           "Content-Type: application/json\r\n\r\n{}",
                       501, "Transfer-Encoding 'identity'");
    expect_raw_problem(&s, "POST /v1/cost HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n"
                           "Content-Type: application/json\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                       501, "Transfer-Encoding");
    /* chunked itself still works */
    char *got = raw_exchange(s.port, "POST /v1/cost HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                     "Transfer-Encoding: chunked\r\nContent-Type: application/json"
                                     "\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
    cr_expect_eq(raw_status(got), 400, "chunked {}: %.300s", got); /* {} lacks the fields */
    cr_expect(strstr(got, "network"), "%.300s", got);
    free(got);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(http_hostile, content_length_headers_that_disagree_are_400)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    expect_raw_problem(&s, "POST /v1/datasets HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                           "Content-Length: 50\r\nContent-Type: application/json\r\n\r\n{\"X\":",
                       400, "Content-Length headers that disagree");
    /* the same value twice is one length (RFC 9110 §8.6 lets a recipient accept it) */
    char *got = raw_exchange(s.port, "POST /v1/cost HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                     "Content-Length: 2\r\nContent-Length: 2\r\n"
                                     "Content-Type: application/json\r\n\r\n{}");
    cr_expect_eq(raw_status(got), 400, "%.300s", got);
    cr_expect(strstr(got, "network"), "not the body's own error: %.300s", got);
    free(got);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(http_hostile, http11_without_host_is_400_http10_is_served)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    expect_raw_problem(&s, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", 400, "Host");
    char *got = raw_exchange(s.port, "GET /healthz HTTP/1.0\r\n\r\n");
    cr_expect_eq(raw_status(got), 200, "HTTP/1.0 without Host: %.300s", got);
    free(got);
    srv_stop(&s);
    srv_cleanup(&s);
}

Test(http_hostile, head_on_an_event_stream_has_headers_and_no_body, .timeout = 60)
{
    srv s;
    cr_assert_eq(srv_start(&s, NULL), 0);
    char ds[64], job[64], req[256];
    upload_digits(&s, ds, sizeof ds);
    char *body = job_body(ds, "[64, 8, 10]", "\"epochs\": 2000, \"seed\": 1");
    submit_job(&s, NULL, body, job, sizeof job);
    free(body);
    snprintf(req, sizeof req, "HEAD /v1/jobs/%s/events HTTP/1.1\r\nHost: x\r\n\r\n", job);
    double t0 = test_now_ms();
    char *got = raw_exchange_ms(s.port, req, 3000);
    double ms = test_now_ms() - t0;
    cr_assert(got);
    cr_expect_eq(raw_status(got), 200, "%.300s", got);
    cr_expect(strstr(got, "text/event-stream"), "%.300s", got);
    const char *end = strstr(got, "\r\n\r\n");
    cr_assert(end, "no end of headers: %.300s", got);
    cr_expect_str_eq(end + 4, "", "HEAD got a body: %.300s", end + 4);
    free(got);
    (void)ms;
    srv_stop(&s);
    srv_cleanup(&s);
}
