/*
 * libFuzzer target: the WebSocket upgrade's header parsers — the origin
 * check (core/http: weir_http_origin_allowed over an origins list, Origin
 * and Host) and the token in a Sec-WebSocket-Protocol list
 * (control/events: weir_events_protocol_token).
 *
 * Input: up to three NUL-separated strings (list, origin, host); the whole
 * input, NUL-terminated, is also a protocol list.  Checks: no crash or
 * over-read; the origin check answers 0 or 1 and allows what "*" allows
 * and an origin listed verbatim; a token found has the credential's shape
 * and occurs in the input after "bearer.".
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/http.h"
#include "control/events/events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), *parts[3] = { "", "", "" }, tok[WEIR_CRED_LEN + 1];
    size_t k = 0;
    int r;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    /* A protocol list may hold anything but NUL. */
    if (weir_events_protocol_token(text, tok) == 0) {
        char needle[8 + WEIR_CRED_LEN];
        assert(strlen(tok) == WEIR_CRED_LEN && strncmp(tok, "wt_", 3) == 0);
        snprintf(needle, sizeof needle, "bearer.%s", tok);
        assert(strstr(text, needle));
    }
    for (char *p = text; k < 3; k++) {
        parts[k] = p;
        p += strlen(p);
        if (p >= text + size)
            break;
        p++;
    }
    r = weir_http_origin_allowed(parts[0], parts[1], parts[2]);
    assert(r == 0 || r == 1);
    assert(weir_http_origin_allowed("*", parts[1], parts[2]) == 1);
    assert(weir_http_origin_allowed(NULL, parts[1], NULL) == 1);
    if (*parts[1] && !strchr(parts[1], ',') && parts[1][0] != ' ' &&
        parts[1][strlen(parts[1]) - 1] != ' ')
        assert(weir_http_origin_allowed(parts[1], parts[1], NULL) == 1);
    free(text);
    return 0;
}
