#!/usr/bin/env bash
# Regenerates the voice prompts in config/prompts/ (8 kHz mono 16-bit WAV)
# with espeak-ng's Mandarin voice and sox. The WAVs are committed, so a
# fresh machine needs neither tool; a court can replace any file with its
# own recorded voice in the same format.
set -euo pipefail
cd "$(dirname "$0")/.."
out=config/prompts
mkdir -p "$out"
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install espeak-ng sox)" >&2; exit 1; }
done
say() { # name text
  local tmp
  tmp=$(mktemp --suffix=.wav)
  espeak-ng -v cmn -s 210 -w "$tmp" "$2"
  # Resample to 8 kHz mono 16-bit, trim leading silence, normalise to -3 dBFS.
  sox "$tmp" -r 8000 -c 1 -b 16 -e signed-integer "$out/$1.wav" silence 1 0.05 0.5% reverse silence 1 0.05 0.5% reverse norm -3
  rm -f "$tmp"
  echo "$out/$1.wav: $(soxi -D "$out/$1.wav") s"
}
say greeting "您好，市北区执行指挥中心举报电话"
say menu "举报执行线索，请按1。暴力抗法或执行现场突发事件，请按2。公安机关或协助单位控制被执行人，请按3。咨询案件，请按4。信访投诉，请按5。紧急财产保全，请按6。其他事项，请按7。"
say case_number "请输入案号，以井号键结束。没有案号请按星号键。"
say case_readback "您输入的案号是"
say confirm "确认请按1，重新输入请按2。"
say invalid "输入有误。"
say message "请在提示音后，说明被执行人的位置、正在做什么，以及您的联系方式。说完请按井号键或直接挂机。"
say ticket_readback "您的举报编号是"
say thanks "感谢您的举报，再见。"
say page_intro "市北区执行指挥中心紧急通知，举报工单"
say page_ask "签收请按1，转下一位请按2。"
say person_hint "转人工请按0。"
say connecting "正在为您转接值班人员，请稍候。"
say no_person "值班人员暂时无法接听，请在提示音后留言，说完请按井号键或直接挂机。"
say whisper "举报电话转接，按1接听。"
say partner_whisper "公安机关或协助单位来电，按1接听。"
say partner_promise "值班人员暂时无法接听，已通知值班人员，将在三十分钟内到场处置。如需补充，请在提示音后留言。"
say consultation_promise "您的咨询已转交案件承办人，将在三个工作日内答复。"
say callback_whisper "回拨举报人，按1继续。"
say callback_intro "您好，这里是市北区执行指挥中心，现为您接通工作人员。"
say follow_up "您好，这里是市北区执行指挥中心，对您的举报进行回访。请评价处理情况：非常满意请按5，满意请按4，一般请按3，不满意请按2，很不满意请按1。"
say follow_up_opt_out "如不希望接受回访，请按9。"
say category_lead "执行线索"
say category_violence "暴力抗法，突发事件"
say category_partner "公安协助，控制被执行人"
say category_consultation "案件咨询"
say category_complaint "信访投诉"
say category_preservation "财产保全"
say category_other "其他事项"
digits=(零 一 二 三 四 五 六 七 八 九)
for d in 0 1 2 3 4 5 6 7 8 9; do
  say "digit_$d" "${digits[$d]}"
done
# The tone before the caller speaks: 1 kHz, 400 ms.
sox -n -r 8000 -c 1 -b 16 -e signed-integer "$out/beep.wav" synth 0.4 sine 1000 vol 0.5
echo "$out/beep.wav: $(soxi -D "$out/beep.wav") s"
# Ringback while a person is rung (China: 450 Hz, 1 s on, 4 s off).
sox -n -r 8000 -c 1 -b 16 -e signed-integer "$out/ringback.wav" synth 1 sine 450 vol 0.4 pad 0 4
echo "$out/ringback.wav: $(soxi -D "$out/ringback.wav") s"
