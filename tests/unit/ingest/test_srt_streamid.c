/*
 * Unit tests for ingest/srt/srt_streamid: both forms, free key order, the
 * spec's default mode (request), refused modes/types/keys, bounds (512
 * bytes, control characters, NUL), and inputs that are not NUL-terminated.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <string.h>

#include <libavutil/error.h>

#include "ingest/srt/srt_streamid.h"

static weir_srt_streamid id;

static int parse(const char *s)
{
    return weir_srt_streamid_parse(s, strlen(s), &id);
}

Test(srt_streamid, access_control_publish)
{
    cr_assert_eq(parse("#!::r=live/abc123,m=publish"), 0);
    cr_assert_str_eq(id.app, "live");
    cr_assert_str_eq(id.key, "abc123");
    cr_assert_eq(id.mode, WEIR_SRT_MODE_PUBLISH);
    cr_assert_eq(id.access_control, 1);
}

Test(srt_streamid, key_order_is_free)
{
    cr_assert_eq(parse("#!::m=publish,u=alice,t=stream,s=xyz,r=live/cam"), 0);
    cr_assert_str_eq(id.key, "cam");
    cr_assert_str_eq(id.user, "alice");
    cr_assert_eq(id.mode, WEIR_SRT_MODE_PUBLISH);
}

Test(srt_streamid, mode_defaults_to_request)
{
    cr_assert_eq(parse("#!::r=live/cam"), 0);
    cr_assert_eq(id.mode, WEIR_SRT_MODE_REQUEST);
    cr_assert_eq(parse("#!::r=live/cam,m=request"), 0);
    cr_assert_eq(id.mode, WEIR_SRT_MODE_REQUEST);
    cr_assert_eq(parse("#!::r=live/cam,m=bidirectional"), 0);
    cr_assert_eq(id.mode, WEIR_SRT_MODE_BIDIRECTIONAL);
    cr_assert_str_eq(weir_srt_mode_name(id.mode), "bidirectional");
}

Test(srt_streamid, plain_form_publishes)
{
    cr_assert_eq(parse("live/cam2"), 0);
    cr_assert_str_eq(id.app, "live");
    cr_assert_str_eq(id.key, "cam2");
    cr_assert_eq(id.mode, WEIR_SRT_MODE_PUBLISH);
    cr_assert_eq(id.access_control, 0);
    /* the key is everything after the first slash */
    cr_assert_eq(parse("live/a/b"), 0);
    cr_assert_str_eq(id.key, "a/b");
}

Test(srt_streamid, custom_keys_and_empty_items_tolerated)
{
    cr_assert_eq(parse("#!::,user_region=eu,r=live/k,,m=publish,h=example.com,"), 0);
    cr_assert_str_eq(id.key, "k");
}

Test(srt_streamid, refused)
{
    static const char *const bad[] = {
        "", "live", "live/", "/key", "#!::", "#!::m=publish", "#!::r=,m=publish",
        "#!::r=live,m=publish", "#!::r=live/k,m=push", "#!::r=live/k,m=publish,t=file",
        "#!::r=live/k,m=publish,x=1", "#!::r=live/a,r=live/b,m=publish",
        "#!::r=live/k,m=publish,m=request", "#!::r=live/k,m", "#!::=v,r=live/k",
        "#!:{r=live/k,m=publish}", "#!r=live/k", "live/k\n", "live/\x01k", "live/k\x7f",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(parse(bad[i]), AVERROR(EINVAL), "accepted \"%s\"", bad[i]);
        cr_assert_not_null(id.why);
    }
}

Test(srt_streamid, embedded_nul_refused)
{
    cr_assert_eq(weir_srt_streamid_parse("live/a\0b", 8, &id), AVERROR(EINVAL));
}

Test(srt_streamid, length_bound)
{
    char buf[WEIR_SRT_STREAMID_MAX + 2];
    memset(buf, 'k', sizeof buf);
    memcpy(buf, "live/", 5);
    cr_assert_eq(weir_srt_streamid_parse(buf, WEIR_SRT_STREAMID_MAX, &id), 0);
    cr_assert_eq(strlen(id.key), WEIR_SRT_STREAMID_MAX - 5);
    cr_assert_eq(weir_srt_streamid_parse(buf, WEIR_SRT_STREAMID_MAX + 1, &id), AVERROR(E2BIG));
}

Test(srt_streamid, not_nul_terminated)
{
    const char s[] = "live/abcXXXX";
    cr_assert_eq(weir_srt_streamid_parse(s, 8, &id), 0);
    cr_assert_str_eq(id.key, "abc");
}

Test(srt_streamid, utf8_passes)
{
    cr_assert_eq(parse("#!::r=live/caf\xc3\xa9,m=publish"), 0);
    cr_assert_str_eq(id.key, "caf\xc3\xa9");
}
